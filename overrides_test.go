package ampoule

import (
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
)

// TestParseEnvOverride: K=V as given, NAME from this process's
// environment, and neither an empty name nor a NAME the process lacks.
func TestParseEnvOverride(t *testing.T) {
	t.Setenv("AMPOULE_TEST_VALUE", "from-env")
	for in, want := range map[string][2]string{"K=V": {"K", "V"}, "K=": {"K", ""}, "K=a=b": {"K", "a=b"}, "AMPOULE_TEST_VALUE": {"AMPOULE_TEST_VALUE", "from-env"}} {
		if k, v, err := ParseEnvOverride(in); err != nil || k != want[0] || v != want[1] {
			t.Errorf("%q: %q=%q, %v", in, k, v, err)
		}
	}
	for _, in := range []string{"", "=V", "AMPOULE_TEST_UNSET_NAME"} {
		if _, _, err := ParseEnvOverride(in); errcode.From(err).Code != errcode.Usage {
			t.Errorf("%q: %v, want a usage error", in, err)
		}
	}
}

// TestParseDirOverride: HOST alone is read-only at its own path beneath
// the guest's root; HOST::GUEST::rw is writable; a HOST above the working
// directory has no path of its own and is refused.
func TestParseDirOverride(t *testing.T) {
	for in, want := range map[string]string{"data": "/data", ".": "/", "a/../b": "/b"} {
		d, err := ParseDirOverride(in)
		if err != nil || d.Guest != want || d.Writable {
			t.Errorf("%q: %+v, %v; want read-only at %s", in, d, err, want)
		}
	}
	if d, err := ParseDirOverride("out::/out::rw"); err != nil || d.Guest != "/out" || !d.Writable {
		t.Errorf("rw: %+v, %v", d, err)
	}
	for _, in := range []string{"..", "../data", "x::relative"} {
		if _, err := ParseDirOverride(in); errcode.From(err).Code != errcode.DirInvalid {
			t.Errorf("%q: %v, want E%04d", in, err, int(errcode.DirInvalid))
		}
	}
}

// TestParseOverrides: every value read in order, a later K winning; no
// --env is a nil map; the first value that does not read is its error,
// an environment variable's before a directory's.
func TestParseOverrides(t *testing.T) {
	env, dirs, err := ParseOverrides([]string{"K=1", "J=2", "K=3"}, []string{"/a::/b::rw", "data"})
	if err != nil || len(env) != 2 || env["K"] != "3" || env["J"] != "2" || len(dirs) != 2 || dirs[0].Host != "/a" || dirs[0].Guest != "/b" || !dirs[0].Writable || dirs[1].Guest != "/data" {
		t.Errorf("%v %+v %v", env, dirs, err)
	}
	if env, dirs, err := ParseOverrides(nil, nil); env != nil || dirs != nil || err != nil {
		t.Errorf("none: %v %+v %v", env, dirs, err)
	}
	if _, _, err := ParseOverrides([]string{"=V"}, []string{"::"}); errcode.From(err).Code != errcode.Usage {
		t.Errorf("bad env and dir: %v, want the env's usage error", err)
	}
	if _, _, err := ParseOverrides([]string{"K=V"}, []string{"::"}); errcode.From(err).Code != errcode.DirInvalid {
		t.Errorf("bad dir: %v, want dir-invalid", err)
	}
}
