package ampoule

import (
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/loader"
)

// ParseEnvOverride reads one environment override (Config.Env), as
// --env takes it: K=V, or NAME alone for the value NAME has in this
// process's environment (which must have it). Either is a host override,
// which Run refuses outside debug.
func ParseEnvOverride(kv string) (string, string, error) {
	k, v, ok := strings.Cut(kv, "=")
	if k == "" {
		return "", "", errcode.Errorf(errcode.Usage, "--env %q is not K=V or NAME", kv)
	}
	if !ok {
		if v, ok = os.LookupEnv(k); !ok {
			return "", "", errcode.Errorf(errcode.Usage, "--env %s: %s is not set in launch's environment", k, k).
				WithHint("--env NAME passes on launch's own NAME; write --env NAME=VALUE to set it")
		}
	}
	return k, v, nil
}

// ParseDirOverride reads one preopened host directory (Config.Dirs), as
// --dir takes it: HOST::GUEST[::rw], or HOST alone, preopened read-only at
// the same path in the guest (a relative HOST beneath the guest's root:
// data is /data, . is /). A host override, which Run refuses outside
// debug.
func ParseDirOverride(s string) (loader.Mount, error) {
	if s != "" && !strings.Contains(s, "::") {
		guest := filepath.ToSlash(filepath.Clean(s))
		if guest == ".." || strings.HasPrefix(guest, "../") {
			return loader.Mount{}, errcode.Errorf(errcode.DirInvalid, "--dir %q: a directory above the working one has no path of its own in the guest", s).
				WithHint("name its guest path: --dir HOST::GUEST, such as --dir ../data::/data")
		}
		s += "::" + path.Clean("/"+guest)
	}
	d, err := loader.ParseMount(s)
	if err != nil {
		return loader.Mount{}, errcode.Errorf(errcode.DirInvalid, "--dir: %v", err)
	}
	return d, nil
}

// ParseOverrides reads --env's and --dir's values in order, as
// ParseEnvOverride and ParseDirOverride do, into Config.Env (nil when env
// is empty; a later K wins) and Config.Dirs; the first one that does not
// read is the error.
func ParseOverrides(env, dirs []string) (map[string]string, []loader.Mount, error) {
	var vars map[string]string
	if len(env) > 0 {
		vars = map[string]string{}
	}
	for _, kv := range env {
		k, v, err := ParseEnvOverride(kv)
		if err != nil {
			return nil, nil, err
		}
		vars[k] = v
	}
	var mounts []loader.Mount
	for _, s := range dirs {
		d, err := ParseDirOverride(s)
		if err != nil {
			return nil, nil, err
		}
		mounts = append(mounts, d)
	}
	return vars, mounts, nil
}
