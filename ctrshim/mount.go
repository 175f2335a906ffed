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

// mountAll mounts containerd's root filesystem mounts on target, in order.
func mountAll(ms []*types.Mount, target string) error {
	if err := os.MkdirAll(target, 0o711); err != nil {
		return err
	}
	for _, m := range ms {
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
			data = append(data, o)
		}
		bind := flags&unix.MS_BIND != 0
		typ, first := m.Type, flags
		if bind {
			typ, first = "", flags&^unix.MS_RDONLY
		}
		if err := unix.Mount(m.Source, target, typ, first, strings.Join(data, ",")); err != nil {
			return fmt.Errorf("mount %s (%s) on %s: %w", m.Source, m.Type, target, err)
		}
		if bind && flags&unix.MS_RDONLY != 0 {
			// A bind mount is made read-only by a remount.
			if err := unix.Mount("", target, "", flags|unix.MS_REMOUNT, ""); err != nil {
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
