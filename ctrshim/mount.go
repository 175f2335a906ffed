package ctrshim

import (
	"fmt"
	"os"
	"strings"

	"github.com/containerd/containerd/api/types"
	"golang.org/x/sys/unix"
)

// mountFlags are the mount(2) flags of containerd's mount options; any
// other option goes to the filesystem as data (overlay's lowerdir=...).
var mountFlags = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY}, "bind": {false, unix.MS_BIND},
	"rbind": {false, unix.MS_BIND | unix.MS_REC}, "nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
	"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV}, "noexec": {false, unix.MS_NOEXEC},
	"exec": {true, unix.MS_NOEXEC}, "noatime": {false, unix.MS_NOATIME}, "relatime": {false, unix.MS_RELATIME},
	"private": {false, 0}, "rprivate": {false, 0},
}

// mountCall is one mount(2) call for a containerd mount, and whether a
// read-only remount must follow it (a bind mount ignores MS_RDONLY).
type mountCall struct {
	source, fstype string
	flags          uintptr
	data           string
	remountRO      bool
}

// mountArgs turns containerd's mount into the call that makes it. It is
// pure, so that the options' reading is tested without root.
func mountArgs(m *types.Mount) (mountCall, error) {
	var flags uintptr
	var data []string
	for _, o := range m.Options {
		if f, ok := mountFlags[o]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		if strings.ContainsRune(o, ',') || strings.ContainsRune(o, 0) {
			return mountCall{}, fmt.Errorf("mount option %q holds a comma or a NUL", o)
		}
		data = append(data, o)
	}
	if m.Type == "" && flags&unix.MS_BIND == 0 {
		return mountCall{}, fmt.Errorf("mount of %s has no type and is no bind mount", m.Source)
	}
	c := mountCall{source: m.Source, fstype: m.Type, flags: flags, data: strings.Join(data, ",")}
	if flags&unix.MS_BIND != 0 {
		c.fstype, c.flags = "", flags&^unix.MS_RDONLY
		c.remountRO = flags&unix.MS_RDONLY != 0
	}
	return c, nil
}

// mountAll mounts containerd's root filesystem mounts on target, in order.
func mountAll(ms []*types.Mount, target string) error {
	if err := os.MkdirAll(target, 0o711); err != nil {
		return err
	}
	for _, m := range ms {
		c, err := mountArgs(m)
		if err != nil {
			return err
		}
		if err := unix.Mount(c.source, target, c.fstype, c.flags, c.data); err != nil {
			return fmt.Errorf("mount %s (%s) on %s: %w", m.Source, m.Type, target, err)
		}
		if c.remountRO {
			if err := unix.Mount("", target, "", c.flags|unix.MS_RDONLY|unix.MS_REMOUNT, ""); err != nil {
				unix.Unmount(target, unix.MNT_DETACH)
				return fmt.Errorf("remounting %s read-only: %w", target, err)
			}
		}
	}
	return nil
}

// unmountAll unmounts everything mounted on target.
func unmountAll(target string) error {
	for i := 0; i < 16; i++ {
		err := unix.Unmount(target, 0)
		if err == unix.EINVAL || err == unix.ENOENT {
			return nil
		}
		if err == unix.EBUSY {
			err = unix.Unmount(target, unix.MNT_DETACH)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
