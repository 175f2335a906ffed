package ampoule

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
)

// TestListenUnix: the socket is owner-only; a server answering there, a
// file that is no socket and an address that is not unix:PATH are refused
// with their codes; a stale socket is replaced.
func TestListenUnix(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "s.sock")
	l, path, err := ListenUnix("unix:" + sock)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the socket: %v, %v; want mode 0600", st, err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	if _, _, err := ListenUnix("unix:" + sock); errcode.From(err).Code != errcode.ServerSocketRefused {
		t.Errorf("a socket a server answers on: %v", err)
	}
	l.Close()
	if l, _, err := ListenUnix("unix:" + sock); err != nil {
		t.Errorf("a stale socket was not replaced: %v", err)
	} else {
		l.Close()
	}
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, nil, 0o644)
	if _, _, err := ListenUnix("unix:" + plain); errcode.From(err).Code != errcode.ServerSocketRefused {
		t.Errorf("a plain file: %v", err)
	}
	if _, _, err := ListenUnix("tcp:127.0.0.1:1"); errcode.From(err).Code != errcode.Usage {
		t.Errorf("tcp: %v", err)
	}
}

// TestWriteNewFile: a new file is written with its mode; an existing one
// is refused (E1031) and left as it was.
func TestWriteNewFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out")
	if err := WriteNewFile(path, []byte("one"), 0o600, "hint"); err != nil {
		t.Fatal(err)
	}
	err := WriteNewFile(path, []byte("two"), 0o600, "choose another")
	if e := errcode.From(err); e.Code != errcode.OutputExists || e.Hint() != "choose another" {
		t.Errorf("an existing file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "one" {
		t.Errorf("the file is %q", b)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
}

// TestPlatformInfoWriteText: a machine that is no TEE guest says that
// production cannot run, and a missing device reads as missing; a TDX
// guest without RTMRs says what that costs.
func TestPlatformInfoWriteText(t *testing.T) {
	var b strings.Builder
	PlatformInfo{}.WriteText(&b)
	if s := b.String(); !strings.Contains(s, "production cannot run here") || !strings.Contains(s, "sev-guest      missing") {
		t.Errorf("no TEE:\n%s", s)
	}
	b.Reset()
	PlatformInfo{TEE: "tdx", TDXGuest: "/dev/tdx_guest", SealedWorkspace: "/dev/shm"}.WriteText(&b)
	if s := b.String(); !strings.Contains(s, "This machine is a tdx guest") || !strings.Contains(s, "no RTMR extension") || strings.Contains(s, "No memory-backed") {
		t.Errorf("tdx:\n%s", s)
	}
}
