package ctrshim

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/pelletier/go-toml/v2"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/ampoule-run/ampoule/errcode"
)

// Settings are the shim's own: how it serves containers, never what a
// container runs. The measured bundle is the image's, and the profile,
// backend and simulator's key are the container's annotations; no setting
// reaches a run's Config.
type Settings struct {
	// Warm serves every container of a containerd namespace from one
	// shim, through an ampoule.Server's warm runners; without it each
	// pod (or container) has a shim of its own and each container starts
	// its own runner.
	Warm bool
	// Linger is how long a warm shim stays once it holds no task.
	Linger time.Duration
}

// DefaultSettings are the settings of a shim that is given none: warm,
// lingering DefaultLinger.
func DefaultSettings() Settings { return Settings{Warm: true, Linger: DefaultLinger} }

// The keys of the shim's runtime options, in containerd's config: the
// runtime's options table ([plugins."io.containerd.grpc.v1.cri"
// .containerd.runtimes.NAME.options]), which containerd 1.7 and 2.x hand
// the shim whole (ConfigBody), or the TOML file its ConfigPath names,
// which is all containerd 1.6 hands on. TypeUrl and ConfigPath are
// containerd's own and are taken; any other key is refused.
const (
	// OptionWarm is Settings.Warm: true or false.
	OptionWarm = "Warm"
	// OptionLinger is Settings.Linger: a Go duration, "1m", "30s", "0s".
	OptionLinger = "Linger"
)

// runtimeOptionsType is the type containerd gives a non-runc runtime's
// options (its typeurl name, without the type.googleapis.com/ prefix).
var runtimeOptionsType = string(proto.MessageName(&runtimeoptions.Options{}))

// maxOptionsBytes bounds the options containerd hands over and the file
// ConfigPath names.
const maxOptionsBytes = 64 << 10

// optionsFile is what the runtime's options may hold. Every field is a
// pointer, so that a key not written leaves the environment's setting.
type optionsFile struct {
	Warm       *bool   `toml:"Warm"`
	Linger     *string `toml:"Linger"`
	TypeUrl    *string `toml:"TypeUrl"`
	ConfigPath *string `toml:"ConfigPath"`
}

// ResolveSettings gives the shim's settings: each from the runtime's
// options (opts, as containerd hands them in Create or on start's
// standard input) if they set it, else from containerd's environment
// (EnvWarm, EnvLinger, read through getenv), else DefaultSettings'. An
// unknown key, a bad value, options of another type, or options that
// reached the shim empty are refused with errcode.ShimOptionsInvalid.
func ResolveSettings(getenv func(string) string, opts *anypb.Any) (Settings, error) {
	set := DefaultSettings()
	if v := getenv(EnvWarm); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Settings{}, optionsErr("%s=%q: want 0 or 1", EnvWarm, v)
		}
		set.Warm = b
	}
	if v := getenv(EnvLinger); v != "" {
		d, err := parseLinger(v)
		if err != nil {
			return Settings{}, optionsErr("%s=%q: %v", EnvLinger, v, err)
		}
		set.Linger = d
	}
	if opts == nil {
		return set, nil
	}
	file, where, err := readOptions(opts)
	if err != nil {
		return Settings{}, err
	}
	if file.Warm != nil {
		set.Warm = *file.Warm
	}
	if file.Linger != nil {
		d, err := parseLinger(*file.Linger)
		if err != nil {
			return Settings{}, optionsErr("%s: %s = %q: %v", where, OptionLinger, *file.Linger, err)
		}
		set.Linger = d
	}
	return set, nil
}

func parseLinger(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, errors.New("want a Go duration of 0s or more, such as 1m")
	}
	return d, nil
}

func optionsErr(format string, args ...any) error {
	return errcode.Errorf(errcode.ShimOptionsInvalid, format, args...).Host()
}

// readOptions decodes the runtime's options: the TOML of the file their
// ConfigPath names, else their ConfigBody. It says where the keys came
// from, for the errors.
func readOptions(opts *anypb.Any) (*optionsFile, string, error) {
	if t := strings.TrimPrefix(opts.TypeUrl, "type.googleapis.com/"); t != runtimeOptionsType {
		return nil, "", optionsErr("runtime options of type %q: the ampoule shim takes %s (a runtime_type other than runc's)", opts.TypeUrl, runtimeOptionsType)
	}
	var ro runtimeoptions.Options
	if err := proto.Unmarshal(opts.Value, &ro); err != nil {
		return nil, "", optionsErr("the runtime options do not decode: %v", err)
	}
	body, where := ro.ConfigBody, "the runtime's options table"
	switch {
	case ro.ConfigPath != "":
		where = ro.ConfigPath
		if !filepath.IsAbs(ro.ConfigPath) {
			return nil, "", optionsErr("ConfigPath %q is not an absolute path", ro.ConfigPath)
		}
		f, err := os.Open(ro.ConfigPath)
		if err != nil {
			return nil, "", optionsErr("ConfigPath: %v", err)
		}
		body, err = io.ReadAll(io.LimitReader(f, maxOptionsBytes+1))
		f.Close()
		if err != nil {
			return nil, "", optionsErr("ConfigPath: %v", err)
		}
	case len(ro.ConfigBody) == 0:
		// containerd 1.6 hands on only TypeUrl and ConfigPath: the
		// table's other keys never reached the shim.
		return nil, "", optionsErr("the runtime's options reached the shim without ConfigPath or a body: containerd 1.6 passes on no other key of the table, so name a TOML file of the settings with ConfigPath")
	}
	if len(body) > maxOptionsBytes {
		return nil, "", optionsErr("%s: larger than %d bytes", where, maxOptionsBytes)
	}
	var file optionsFile
	dec := toml.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&file); err != nil {
		var strict *toml.StrictMissingError
		if errors.As(err, &strict) {
			var keys []string
			for _, e := range strict.Errors {
				keys = append(keys, strings.Join(e.Key(), "."))
			}
			return nil, "", optionsErr("%s: unknown key %s: the shim's settings are %s and %s, and nothing else (a run's profile, backend and bundle are never the shim's)", where, strings.Join(keys, ", "), OptionLinger, OptionWarm)
		}
		return nil, "", optionsErr("%s: %v", where, err)
	}
	return &file, where, nil
}

// readStartOptions reads the runtime options containerd hands start on
// its standard input (a marshaled Any; nothing when the runtime has
// none). Anything on stdin that is not runtime options, such as a later
// containerd's bootstrap parameters, gives none here: Create checks the
// options again and refuses what start could not take.
func readStartOptions(stdin io.Reader) *anypb.Any {
	if f, ok := stdin.(*os.File); !ok || f == nil {
		return nil
	} else if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice != 0 {
		// A terminal, or /dev/null: containerd gave nothing.
		return nil
	}
	b, err := io.ReadAll(io.LimitReader(stdin, maxOptionsBytes+1))
	if err != nil || len(b) == 0 || len(b) > maxOptionsBytes {
		return nil
	}
	var a anypb.Any
	if proto.Unmarshal(b, &a) != nil || strings.TrimPrefix(a.TypeUrl, "type.googleapis.com/") != runtimeOptionsType {
		return nil
	}
	return &a
}

// String is the settings as the serving shim's flags write them.
func (s Settings) String() string { return fmt.Sprintf("warm=%v linger=%v", s.Warm, s.Linger) }
