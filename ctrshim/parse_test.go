package ctrshim

import (
	"testing"

	"github.com/containerd/containerd/api/types"
	"golang.org/x/sys/unix"
)

// containerd's mounts as its snapshotters give them: overlay's options go
// to the filesystem, a read-only bind is a bind and a remount.
func TestMountArgs(t *testing.T) {
	cases := []struct {
		m    *types.Mount
		want mountCall
		err  bool
	}{
		{&types.Mount{Type: "overlay", Source: "overlay", Options: []string{"index=off", "workdir=/w", "upperdir=/u", "lowerdir=/l"}},
			mountCall{source: "overlay", fstype: "overlay", data: "index=off,workdir=/w,upperdir=/u,lowerdir=/l"}, false},
		{&types.Mount{Type: "bind", Source: "/snap/fs", Options: []string{"ro", "rbind"}},
			mountCall{source: "/snap/fs", flags: unix.MS_BIND | unix.MS_REC, remountRO: true}, false},
		{&types.Mount{Type: "bind", Source: "/snap/fs", Options: []string{"rbind", "rw"}},
			mountCall{source: "/snap/fs", flags: unix.MS_BIND | unix.MS_REC}, false},
		{&types.Mount{Type: "overlay", Source: "overlay", Options: []string{"ro", "nosuid", "lowerdir=/a:/b"}},
			mountCall{source: "overlay", fstype: "overlay", flags: unix.MS_RDONLY | unix.MS_NOSUID, data: "lowerdir=/a:/b"}, false},
		{&types.Mount{Source: "/x"}, mountCall{}, true},
		{&types.Mount{Type: "overlay", Options: []string{"lowerdir=/a,upperdir=/etc"}}, mountCall{}, true},
	}
	for i, c := range cases {
		got, err := mountArgs(c.m)
		if (err != nil) != c.err || got != c.want {
			t.Errorf("%d: %+v: got %+v, %v; want %+v (error %v)", i, c.m.Options, got, err, c.want, c.err)
		}
	}
}

// FuzzParseSpec: config.json comes from the host; any bytes give a spec
// or an error, never a panic, and a root path never holds a NUL.
func FuzzParseSpec(f *testing.F) {
	f.Add([]byte(`{"root":{"path":"rootfs"},"annotations":{"io.kubernetes.cri.container-type":"sandbox","run.ampoule.profile":"staging"}}`))
	f.Add([]byte(`{"root":{"path":"a\u0000b"}}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := parseSpec(data)
		if err != nil {
			return
		}
		for _, r := range s.Root.Path {
			if r == 0 {
				t.Fatal("a NUL in root.path")
			}
		}
	})
}

// FuzzMountArgs: no option list panics, and none smuggles a comma into
// the data it hands the filesystem beside the options containerd gave.
func FuzzMountArgs(f *testing.F) {
	f.Add("overlay", "lowerdir=/l", "ro")
	f.Add("bind", "rbind", "ro")
	f.Add("", "x,y", "")
	f.Fuzz(func(t *testing.T, typ, o1, o2 string) {
		c, err := mountArgs(&types.Mount{Type: typ, Source: "s", Options: []string{o1, o2}})
		if err != nil {
			return
		}
		if c.flags&unix.MS_BIND != 0 && c.fstype != "" {
			t.Fatal("a bind mount with a filesystem type")
		}
	})
}
