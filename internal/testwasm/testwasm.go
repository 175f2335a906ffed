// Package testwasm builds the example workloads and the launch binary for
// tests, so that 'go test ./...' needs nothing built beforehand.
package testwasm

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Root returns the repository's root directory.
func Root(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("testwasm: no go.mod above the working directory")
		}
		dir = parent
	}
}

var (
	mu    sync.Mutex
	built = map[string]string{}
)

// Example builds wasm-examples/NAME for GOOS=wasip1 (once per test binary)
// and returns the bundle directory, which then holds module.wasm.
func Example(t testing.TB, name string) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if dir, ok := built[name]; ok {
		return dir
	}
	root := Root(t)
	dir := filepath.Join(root, "wasm-examples", name)
	tmp := filepath.Join(t.TempDir(), "module.wasm")
	cmd := exec.Command("go", "build", "-o", tmp, "./wasm-examples/"+name)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building %s: %v\n%s", name, err, out)
	}
	// Rename is atomic, so test binaries building the same example at once
	// never see a half-written module.
	data, err := os.ReadFile(tmp)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, filepath.Join(dir, "module.wasm"), data, 0o644)
	built[name] = dir
	return dir
}

// Module returns the built module's bytes for wasm-examples/NAME.
func Module(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Example(t, name), "module.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Launch builds the launch command once per test binary and returns its path.
func Launch(t testing.TB) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if p, ok := built["\x00launch"]; ok {
		return p
	}
	root := Root(t)
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(t.TempDir(), "launch")
	cmd := exec.Command("go", "build", "-o", tmp, "./cmd/launch")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building launch: %v\n%s", err, out)
	}
	data, err := os.ReadFile(tmp)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "bin", "launch-test")
	publish(t, p, data, 0o755)
	built["\x00launch"] = p
	return p
}

// publish writes data to dst through a file of its own beside it and a
// rename, so that test binaries of several packages, which go test runs
// at once, never see a half-written file nor take each other's staged
// one: the staged name is unique (os.CreateTemp), not derived from
// t.TempDir(), whose names repeat from one test binary to the next.
func publish(t testing.TB, dst string, data []byte, mode os.FileMode) {
	t.Helper()
	f, err := os.CreateTemp(filepath.Dir(dst), "."+filepath.Base(dst)+".*")
	if err != nil {
		t.Fatal(err)
	}
	staged := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(staged, dst)
	}
	if err != nil {
		os.Remove(staged)
		t.Fatal(err)
	}
}

// CopyBundle is a fresh bundle directory holding src's module.wasm and
// the given manifest as ampoule.toml.
func CopyBundle(t testing.TB, src, manifest string) string {
	t.Helper()
	dir := t.TempDir()
	module, err := os.ReadFile(filepath.Join(src, "module.wasm"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "module.wasm"), module, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ampoule.toml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

var (
	cacheOnce sync.Once
	cacheDir  string
	cacheErr  error
)

// CacheDir is one compilation cache directory shared by every test of the
// test binary that asks for it, made on first use, so that each example
// guest compiles once per package run rather than once per test. It is
// for tests whose subject is not the cache: a test that checks what a
// cache holds, or whether a run compiled or hit it, keeps a t.TempDir()
// of its own. The package's TestMain removes it with RemoveCacheDir.
func CacheDir(t testing.TB) string {
	t.Helper()
	cacheOnce.Do(func() { cacheDir, cacheErr = os.MkdirTemp("", "ampoule-test-cache-") })
	if cacheErr != nil {
		t.Fatal(cacheErr)
	}
	return cacheDir
}

// RemoveCacheDir removes the directory CacheDir made, if it made one; a
// TestMain calls it after m.Run.
func RemoveCacheDir() {
	cacheOnce.Do(func() {}) // after this, CacheDir makes none
	if cacheDir != "" {
		os.RemoveAll(cacheDir)
	}
}
