package sandbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strconv"
	"strings"
	"testing"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"

	"github.com/ampoule-run/ampoule/errcode"
)

// TestSecretFSRefusesEveryChange: the secrets' file system reads its
// files and refuses every change with EROFS; its opens count against the
// open-files limit.
func TestSecretFSRefusesEveryChange(t *testing.T) {
	var hits []errcode.Code
	limits := &fileLimits{maxOpen: 2, hit: func(c errcode.Code) { hits = append(hits, c) }}
	fsys := newSecretFS(map[string][]byte{"api-key": []byte("sk-123"), "db": []byte("pw")}, limits)
	for name, flag := range map[string]experimentalsys.Oflag{
		"O_WRONLY": experimentalsys.O_WRONLY,
		"O_RDWR":   experimentalsys.O_RDWR,
		"O_TRUNC":  experimentalsys.O_RDONLY | experimentalsys.O_TRUNC,
		"O_CREAT":  experimentalsys.O_RDONLY | experimentalsys.O_CREAT,
		"O_APPEND": experimentalsys.O_RDONLY | experimentalsys.O_APPEND,
	} {
		for _, path := range []string{"api-key", "new"} {
			f, e := fsys.OpenFile(path, flag, 0o600)
			if e == 0 {
				f.Close()
			}
			if e != experimentalsys.EROFS {
				t.Errorf("open of %s with %s: errno %v, want EROFS", path, name, e)
			}
		}
	}
	for name, e := range map[string]experimentalsys.Errno{
		"mkdir":   fsys.Mkdir("d", 0o700),
		"chmod":   fsys.Chmod("api-key", 0o777),
		"unlink":  fsys.Unlink("api-key"),
		"rmdir":   fsys.Rmdir("."),
		"rename":  fsys.Rename("api-key", "x"),
		"link":    fsys.Link("api-key", "h"),
		"symlink": fsys.Symlink("api-key", "s"),
		"utimens": fsys.Utimens("api-key", 0, 0),
	} {
		if e != experimentalsys.EROFS {
			t.Errorf("%s: errno %v, want EROFS", name, e)
		}
	}
	// The mount's own directory (its preopen) does not count; the files do.
	dir, e := fsys.OpenFile(".", experimentalsys.O_RDONLY|experimentalsys.O_DIRECTORY, 0)
	if e != 0 {
		t.Fatalf("opening the directory: %v", e)
	}
	entries, e := dir.Readdir(-1)
	if e != 0 || len(entries) != 2 || entries[0].Name != "api-key" || entries[1].Name != "db" {
		t.Errorf("the directory lists %+v (%v)", entries, e)
	}
	f, e := fsys.OpenFile("api-key", experimentalsys.O_RDONLY, 0)
	if e != 0 {
		t.Fatalf("read-only open: %v", e)
	}
	buf := make([]byte, 16)
	if n, e := f.Read(buf); e != 0 || string(buf[:n]) != "sk-123" {
		t.Errorf("read %q, errno %v", buf[:n], e)
	}
	if _, e := f.Write([]byte("x")); e == 0 {
		t.Error("a write to an open secret succeeded")
	}
	if e := f.Truncate(0); e != experimentalsys.EROFS {
		t.Errorf("truncate: %v", e)
	}
	if st, e := f.Stat(); e != 0 || st.Size != 6 || st.Mode.Perm()&0o222 != 0 {
		t.Errorf("stat: %+v %v", st, e)
	}
	g, e := fsys.OpenFile("db", experimentalsys.O_RDONLY, 0)
	if e != 0 {
		t.Fatal(e)
	}
	if _, e := fsys.OpenFile("api-key", experimentalsys.O_RDONLY, 0); e != experimentalsys.EPERM || len(hits) != 1 || hits[0] != errcode.OpenFilesLimit {
		t.Errorf("a third open past open_files = 2: errno %v, hits %v", e, hits)
	}
	f.Close()
	g.Close()
	if _, e := fsys.OpenFile("missing", experimentalsys.O_RDONLY, 0); e != experimentalsys.ENOENT {
		t.Errorf("a missing secret: %v", e)
	}
	if limits.open != 0 {
		t.Errorf("%d opens still counted", limits.open)
	}
	dir.Close()
}

// TestGuestReadsItsSecret: a supervised guest reads its secret at
// /run/secrets and cannot change it; the secret is in neither the
// runner's command line nor its environment.
func TestGuestReadsItsSecret(t *testing.T) {
	secret := []byte("sk-live-" + strings.Repeat("7", 24))
	s, stdout, stderr := spec(t, "secret-consumer", "--try-write")
	s.Secrets = map[string][]byte{"api-key": secret}
	var procSeen [][]byte
	hooks := Hooks{BeforeStart: func(pid int) error {
		for _, f := range []string{"environ", "cmdline"} {
			b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/" + f)
			if err != nil {
				return err
			}
			procSeen = append(procSeen, b)
		}
		return nil
	}}
	res, err := Supervise(context.Background(), testExe(t), s, hooks)
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("%+v %v\n%s", res, err, stderr)
	}
	sum := sha256.Sum256(secret)
	if want := hex.EncodeToString(sum[:]) + "  /run/secrets/api-key\n"; !strings.HasPrefix(stdout.String(), want) {
		t.Errorf("stdout does not start with %q:\n%s", want, stdout)
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 6 {
		t.Fatalf("%d lines, want 6:\n%s", len(lines), stdout)
	}
	for i, what := range []string{"overwrite", "append to", "create", "remove", "mkdir"} {
		// EROFS, as the guest's libc names it.
		if l := lines[i+1]; !strings.HasPrefix(l, what+" /run/secrets/") || !strings.HasSuffix(l, ": Read-only file system") || !strings.Contains(l, "refused: ") {
			t.Errorf("%s is not refused with EROFS: %s", what, l)
		}
	}
	if len(procSeen) != 2 || len(procSeen[1]) == 0 {
		t.Fatalf("the runner's /proc was not read: %q", procSeen)
	}
	for _, b := range procSeen {
		if bytes.Contains(b, secret) || bytes.Contains(b, []byte("sk-live")) {
			t.Errorf("the runner's /proc holds the secret: %q", b)
		}
	}
	// Unsupervised too, with the file system as Run mounts it, beneath a
	// mount of its parent directory (whose own run/secrets it hides).
	s, stdout, _ = spec(t, "secret-consumer")
	s.Secrets = map[string][]byte{"api-key": secret}
	parent := t.TempDir()
	os.MkdirAll(parent+"/secrets", 0o755)
	os.WriteFile(parent+"/secrets/api-key", []byte("the host's own"), 0o644)
	s.Dirs = []Mount{{Host: parent, Guest: "/run"}}
	if _, err := Run(context.Background(), s); err != nil || !strings.HasPrefix(stdout.String(), hex.EncodeToString(sum[:])) {
		t.Errorf("Run: %v\n%s", err, stdout)
	}
}

// TestSecretsRefuseAMountThere: no mount may sit where the secrets are,
// and a secret's name is a file name.
func TestSecretsRefuseAMountThere(t *testing.T) {
	for _, guest := range []string{SecretsDir, SecretsDir + "/x"} {
		s, _, _ := spec(t, "secret-consumer")
		s.Secrets = map[string][]byte{"api-key": []byte("v")}
		s.Dirs = []Mount{{Host: t.TempDir(), Guest: guest}}
		if _, err := Run(context.Background(), s); codeOf(err) != errcode.DirInvalid {
			t.Errorf("a mount at %s: %v", guest, err)
		}
		if _, err := Supervise(context.Background(), testExe(t), s, Hooks{}); codeOf(err) != errcode.DirInvalid {
			t.Errorf("a supervised mount at %s: %v", guest, err)
		}
	}
	for _, name := range []string{"", ".", "..", "a/b"} {
		s, _, _ := spec(t, "secret-consumer")
		s.Secrets = map[string][]byte{name: []byte("v")}
		if _, err := Run(context.Background(), s); codeOf(err) != errcode.Internal {
			t.Errorf("a secret named %q: %v", name, err)
		}
	}
}
