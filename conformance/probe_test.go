package conformance

import (
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ampoule-run/ampoule/internal/testwasm"
)

var (
	probeOnce sync.Once
	probePath string
	probeErr  error
)

// probe builds conformance/probe for wasip1 once.
func probe(t *testing.T, tl tools) string {
	t.Helper()
	probeOnce.Do(func() {
		probePath = filepath.Join(tl.dir, "probe.wasm")
		cmd := exec.Command("go", "build", "-o", probePath, "./conformance/probe")
		cmd.Dir = testwasm.Root(t)
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
		if out, err := cmd.CombinedOutput(); err != nil {
			probeErr = err
			t.Logf("%s", out)
		}
	})
	if probeErr != nil {
		t.Fatal(probeErr)
	}
	return probePath
}

// both runs in through plain wazero and launch, requires the same stdout,
// stderr and exit status, and returns launch's outcome.
func both(t *testing.T, in invocation) outcome {
	t.Helper()
	tl := setup(t)
	in.module = probe(t, tl)
	if in.dir == "" {
		in.dir = t.TempDir()
	}
	w := tl.runWazero(t, in)
	l := tl.runLaunch(t, in)
	if w != l {
		t.Errorf("plain wazero and launch differ for %q:\nwazero: %+v\nlaunch: %+v", in.args, w, l)
	}
	return l
}

func TestProbeArgs(t *testing.T) {
	// argv[0] differs by design: wazero passes the module path, launch the
	// bundle's name (here the file name of a bare module). Compare the rest.
	tl := setup(t)
	in := invocation{module: probe(t, tl), args: []string{"args", "a", "b c", "", "ünïcode", "--flag=x", "-"}, dir: t.TempDir()}
	w, l := tl.runWazero(t, in), tl.runLaunch(t, in)
	want := `"args" "a" "b c" "" "ünïcode" "--flag=x" "-"]` + "\n"
	if !strings.HasSuffix(w.stdout, want) || !strings.HasSuffix(l.stdout, want) {
		t.Errorf("argv:\nwazero %q\nlaunch %q\nwant suffix %q", w.stdout, l.stdout, want)
	}
	if !strings.HasPrefix(l.stdout, `["probe.wasm" `) {
		t.Errorf("launch's argv[0] = %q, want the module's file name", l.stdout)
	}
}

func TestProbeEnv(t *testing.T) {
	l := both(t, invocation{args: []string{"env"}, env: []string{"B=2", "A=1", "EQ=x=y", "EMPTY=", "UTF=ü"}})
	if want := "A=1\nB=2\nEMPTY=\nEQ=x=y\nUTF=ü\n"; l.stdout != want {
		t.Errorf("env = %q, want %q", l.stdout, want)
	}
	if l := both(t, invocation{args: []string{"env"}}); l.stdout != "" {
		t.Errorf("the host's environment leaked into the guest: %q", l.stdout)
	}
}

func TestProbeStdio(t *testing.T) {
	l := both(t, invocation{args: []string{"echo"}, stdin: []byte("hello\nworld\n")})
	if l.stdout != "hello\nworld\n" || l.stderr != "done 12\n" || l.exit != 0 {
		t.Errorf("echo: %+v", l)
	}
	big := make([]byte, 3<<20)
	rand.Read(big)
	l = both(t, invocation{args: []string{"echo"}, stdin: big})
	if l.stdout != string(big) {
		t.Errorf("3 MiB of stdin came back as %d bytes", len(l.stdout))
	}
	if l := both(t, invocation{args: []string{"echo"}}); l.stdout != "" || l.stderr != "done 0\n" {
		t.Errorf("empty stdin: %+v", l)
	}
}

func TestProbeExitCodes(t *testing.T) {
	for _, code := range []string{"0", "1", "2", "7", "42", "125", "255"} {
		l := both(t, invocation{args: []string{"exit", code}})
		if got := l.exit; strconv.Itoa(got) != code {
			t.Errorf("exit %s: got %d", code, got)
		}
	}
}

func TestProbePreopens(t *testing.T) {
	ro := t.TempDir()
	rw := t.TempDir()
	os.WriteFile(filepath.Join(ro, "a.txt"), []byte("alpha\n"), 0o644)
	os.Mkdir(filepath.Join(ro, "sub"), 0o755)
	os.WriteFile(filepath.Join(ro, "sub", "b.txt"), []byte("beta beta\n"), 0o644)
	mounts := []mount{{host: ro, guest: "/ro"}, {host: rw, guest: "/rw", writable: true}}

	l := both(t, invocation{args: []string{"ls", "/ro"}, mounts: mounts})
	if l.stdout != "a.txt ---------- 6\nsub d--------- 0\n" {
		t.Errorf("ls /ro = %q", l.stdout)
	}
	if l := both(t, invocation{args: []string{"cat", "/ro/sub/b.txt"}, mounts: mounts}); l.stdout != "beta beta\n" {
		t.Errorf("cat = %+v", l)
	}
	if l := both(t, invocation{args: []string{"cat", "/ro/../../etc/passwd"}, mounts: mounts}); l.exit == 0 {
		t.Errorf("a path above the preopen was readable: %+v", l)
	}
	// A write to a read-only mount differs by design: wazero's read-only
	// file system says ENOSYS ("Not implemented"), launch EROFS, as Linux
	// does for a read-only mount.
	tl := setup(t)
	in := invocation{module: probe(t, tl), args: []string{"write", "/ro/new.txt", "x"}, mounts: mounts, dir: t.TempDir()}
	if w := tl.runWazero(t, in); w.exit == 0 || !strings.Contains(w.stderr, "Not implemented") {
		t.Errorf("plain wazero's read-only mount: %+v", w)
	}
	if l := tl.runLaunch(t, in); l.exit == 0 || !strings.Contains(l.stderr, "open /ro/new.txt: Read-only file system") {
		t.Errorf("a write to a read-only mount under launch: %+v, want EROFS", l)
	}
	if _, err := os.Stat(filepath.Join(ro, "new.txt")); err == nil {
		t.Error("the write reached the read-only host directory")
	}
	l = both(t, invocation{args: []string{"write", "/rw/new.txt", "written"}, mounts: mounts})
	if l.stdout != "wrote and read \"written\"\n" {
		t.Errorf("write = %+v", l)
	}
	if b, _ := os.ReadFile(filepath.Join(rw, "new.txt")); string(b) != "written" {
		t.Errorf("host sees %q", b)
	}
	if l := both(t, invocation{args: []string{"ls", "/"}, mounts: nil}); l.exit == 0 {
		t.Errorf("with no preopens, / was listable: %+v", l)
	}
}

func TestProbeClocksAndRandom(t *testing.T) {
	if l := both(t, invocation{args: []string{"clock"}}); l.stdout != "clocks ok\n" {
		t.Errorf("clock: %+v", l)
	}
	if l := both(t, invocation{args: []string{"random"}}); l.stdout != "random ok\n" {
		t.Errorf("random: %+v", l)
	}
}

// TestSymlinkEscapes shows that plain wazero follows symbolic links out of a
// preopened directory (links that lay there and links the guest makes) and
// that launch does not: every path is resolved by the kernel beneath its
// preopen.
func TestSymlinkEscapes(t *testing.T) {
	tl := setup(t)
	base := t.TempDir()
	root, outside := filepath.Join(base, "root"), filepath.Join(base, "outside")
	os.MkdirAll(root, 0o755)
	os.MkdirAll(outside, 0o755)
	os.WriteFile(filepath.Join(outside, "secret.txt"), []byte("HOST-SECRET\n"), 0o644)
	os.WriteFile(filepath.Join(root, "inside.txt"), []byte("inside\n"), 0o644)
	os.Symlink(outside, filepath.Join(root, "abs"))
	os.Symlink("../outside", filepath.Join(root, "rel"))
	mounts := []mount{{host: root, guest: "/data", writable: true}}
	in := func(args ...string) invocation {
		return invocation{module: probe(t, tl), args: args, mounts: mounts, dir: t.TempDir()}
	}

	escapes := [][]string{
		{"cat", "/data/abs/secret.txt"},
		{"cat", "/data/rel/secret.txt"},
		{"ls", "/data/rel"},
		{"write", "/data/rel/planted.txt", "x"},
	}
	planted := filepath.Join(outside, "planted.txt")
	for _, args := range escapes {
		// launch first, so that what plain wazero does cannot hide a write.
		l := tl.runLaunch(t, in(args...))
		if _, err := os.Stat(planted); err == nil {
			t.Errorf("launch %v wrote outside its preopen", args)
		}
		w := tl.runWazero(t, in(args...))
		os.Remove(planted)
		if strings.Contains(l.stdout, "HOST-SECRET") || strings.Contains(l.stdout, "secret.txt") || l.exit == 0 {
			t.Errorf("launch %v escaped its preopen: %+v", args, l)
		}
		if !strings.Contains(l.stderr, "not permitted") {
			t.Errorf("launch %v: want a permission error, got %q", args, l.stderr)
		}
		t.Logf("plain wazero %v: exit %d, stdout %q", args, w.exit, w.stdout)
	}
	// A link the guest makes itself.
	if l := tl.runLaunch(t, in("symlink", "../../../../../../../../"+strings.TrimPrefix(outside, "/"), "/data/made")); l.exit != 0 {
		t.Fatalf("making a link: %+v", l)
	}
	if l := tl.runLaunch(t, in("cat", "/data/made/secret.txt")); l.exit == 0 || strings.Contains(l.stdout, "HOST-SECRET") {
		t.Errorf("a guest-made link escaped: %+v", l)
	}
	if w := tl.runWazero(t, in("cat", "/data/made/secret.txt")); strings.Contains(w.stdout, "HOST-SECRET") {
		t.Logf("plain wazero follows the guest-made link out: %q", w.stdout)
	}
	// Links that stay inside still work.
	if l := tl.runLaunch(t, in("symlink", "inside.txt", "/data/alias")); l.exit != 0 {
		t.Fatalf("%+v", l)
	}
	if l := tl.runLaunch(t, in("cat", "/data/alias")); l.stdout != "inside\n" {
		t.Errorf("an inside link broke: %+v", l)
	}
}
