package ctrshim

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	taskapi "github.com/containerd/containerd/api/runtime/task/v2"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/ampoule-run/ampoule/errcode"
)

// options are runtime options as containerd hands them for a non-runc
// runtime.
func options(t testing.TB, o *runtimeoptions.Options) *anypb.Any {
	b, err := proto.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return &anypb.Any{TypeUrl: "runtimeoptions.v1.Options", Value: b}
}

func env(kv ...string) func(string) string {
	return func(k string) string {
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] == k {
				return kv[i+1]
			}
		}
		return ""
	}
}

// The settings come from the runtime's options (its table, containerd
// 1.7+, or the file its ConfigPath names, 1.6) over containerd's
// environment over the defaults, key by key; anything else is refused
// with E1080, above all a key that would choose what runs.
func TestResolveSettings(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "shim.toml")
	if err := os.WriteFile(file, []byte("Warm = false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	body := func(s string) *anypb.Any { return options(t, &runtimeoptions.Options{ConfigBody: []byte(s)}) }
	cases := []struct {
		name string
		env  func(string) string
		opts *anypb.Any
		want Settings
		err  string // a part of the refusal's message
	}{
		{"defaults", env(), nil, Settings{Warm: true, Linger: time.Minute}, ""},
		{"environment", env(EnvWarm, "0", EnvLinger, "5s"), nil, Settings{Warm: false, Linger: 5 * time.Second}, ""},
		{"options over environment", env(EnvWarm, "0", EnvLinger, "5s"), body(`Linger = "10s"`), Settings{Warm: false, Linger: 10 * time.Second}, ""},
		{"both keys", env(), body("Linger = \"0s\"\nWarm = false\nTypeUrl = \"io.containerd.ampoule.v1.options\"\n"), Settings{Warm: false, Linger: 0}, ""},
		{"ConfigPath", env(EnvLinger, "2s"), options(t, &runtimeoptions.Options{ConfigPath: file}), Settings{Warm: false, Linger: 2 * time.Second}, ""},
		{"ConfigPath over body", env(), options(t, &runtimeoptions.Options{ConfigPath: file, ConfigBody: []byte(`Warm = true`)}), Settings{Warm: false, Linger: time.Minute}, ""},
		{"profile refused", env(), body(`Profile = "debug"`), Settings{}, "unknown key Profile"},
		{"backend refused", env(), body("Linger = \"1s\"\nBackend = \"sim\"\n"), Settings{}, "unknown key Backend"},
		{"sim key refused", env(), body(`SimKey = "/k"`), Settings{}, "unknown key SimKey"},
		{"a manifest's table refused", env(), body("[env]\nGREETING = \"x\"\n"), Settings{}, "unknown key env"},
		{"file's unknown key", env(), options(t, &runtimeoptions.Options{ConfigPath: writeFile(t, dir, "bad.toml", "Manifest = \"x\"\n")}), Settings{}, "unknown key Manifest"},
		{"relative ConfigPath", env(), options(t, &runtimeoptions.Options{ConfigPath: "shim.toml"}), Settings{}, "not an absolute path"},
		{"missing ConfigPath", env(), options(t, &runtimeoptions.Options{ConfigPath: filepath.Join(dir, "none.toml")}), Settings{}, "no such file"},
		{"table that containerd 1.6 dropped", env(), options(t, &runtimeoptions.Options{TypeUrl: "x"}), Settings{}, "containerd 1.6"},
		{"runc's options", env(), &anypb.Any{TypeUrl: "containerd.runc.v1.Options"}, Settings{}, "of type"},
		{"not TOML", env(), body("Linger = "), Settings{}, "the runtime's options table"},
		{"a bad linger", env(), body(`Linger = "soon"`), Settings{}, "Go duration"},
		{"a negative linger", env(), body(`Linger = "-1s"`), Settings{}, "Go duration"},
		{"a linger of the wrong type", env(), body(`Linger = 5`), Settings{}, "Linger"},
		{"a bad environment", env(EnvWarm, "no"), nil, Settings{}, EnvWarm},
		{"a bad environment linger", env(EnvLinger, "1 minute"), nil, Settings{}, EnvLinger},
	}
	for _, c := range cases {
		got, err := ResolveSettings(c.env, c.opts)
		if c.err == "" {
			if err != nil || got != c.want {
				t.Errorf("%s: %+v, %v; want %+v", c.name, got, err, c.want)
			}
			continue
		}
		var ce *errcode.Error
		if !errors.As(err, &ce) || ce.Code != errcode.ShimOptionsInvalid || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: %+v, %v; want E1080 with %q", c.name, got, err, c.err)
		}
	}
}

func writeFile(t testing.TB, dir, name, text string) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// Each setting has its key, and the keys are the settings' and
// containerd's own, nothing else: a field added to Settings without its
// key, or a key added that no setting reads, fails here.
func TestSettingsKeys(t *testing.T) {
	st, of := reflect.TypeOf(Settings{}), reflect.TypeOf(optionsFile{})
	for i := range st.NumField() {
		if _, ok := of.FieldByName(st.Field(i).Name); !ok {
			t.Errorf("Settings.%s has no key in the runtime options", st.Field(i).Name)
		}
	}
	for i := range of.NumField() {
		f := of.Field(i)
		_, isSetting := st.FieldByName(f.Name)
		if !isSetting && f.Name != "TypeUrl" && f.Name != "ConfigPath" {
			t.Errorf("the runtime options' key %s is no setting and not containerd's", f.Name)
		}
		if tag := f.Tag.Get("toml"); tag != f.Name {
			t.Errorf("the key of %s is %q", f.Name, tag)
		}
	}
	for _, k := range []string{OptionWarm, OptionLinger} {
		if _, ok := of.FieldByName(k); !ok {
			t.Errorf("the key %s is not read", k)
		}
	}
}

// start reads the runtime options containerd writes on its stdin, and
// nothing from a stdin that holds none.
func TestReadStartOptions(t *testing.T) {
	want := options(t, &runtimeoptions.Options{ConfigPath: "/etc/ampoule/shim.toml"})
	pipe := func(b []byte) *os.File {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		go func() { w.Write(b); w.Close() }()
		t.Cleanup(func() { r.Close() })
		return r
	}
	b, _ := proto.Marshal(want)
	if got := readStartOptions(pipe(b)); got == nil || !proto.Equal(got, want) {
		t.Errorf("containerd's options: %v", got)
	}
	other, _ := proto.Marshal(&anypb.Any{TypeUrl: "bootstrap", Value: []byte{1}})
	for name, in := range map[string]*os.File{"empty": pipe(nil), "not options": pipe(other), "garbage": pipe([]byte{0xff, 0xff})} {
		if got := readStartOptions(in); got != nil {
			t.Errorf("%s: %v", name, got)
		}
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if got := readStartOptions(null); got != nil {
		t.Errorf("/dev/null: %v", got)
	}
}

// A Create whose runtime options the shim does not take is refused with
// E1080, and one whose settings are not those the shim started with too.
func TestCreateRefusesOptions(t *testing.T) {
	tc, _ := client(t)
	ctx := context.Background()
	b := bundle(t, `"io.kubernetes.cri.container-type":"sandbox"`)
	bad := options(t, &runtimeoptions.Options{ConfigBody: []byte(`Profile = "debug"`)})
	_, err := tc.Create(ctx, &taskapi.CreateTaskRequest{ID: "pod", Bundle: b, Options: bad})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "E1080 shim-options-invalid") {
		t.Errorf("a Create with Profile in its options: %v", err)
	}
	s := NewService("test", nil, nil)
	s.settings = &Settings{Warm: true, Linger: time.Minute}
	other := options(t, &runtimeoptions.Options{ConfigBody: []byte(`Linger = "5s"`)})
	t.Setenv(EnvLinger, "")
	t.Setenv(EnvWarm, "")
	if _, err := s.Create(ctx, &taskapi.CreateTaskRequest{ID: "pod", Bundle: b, Options: other}); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "E1080") {
		t.Errorf("a Create whose settings are not the shim's: %v", err)
	}
	same := options(t, &runtimeoptions.Options{ConfigBody: []byte(`Linger = "1m"`)})
	if _, err := s.Create(ctx, &taskapi.CreateTaskRequest{ID: "pod", Bundle: b, Options: same}); err != nil {
		t.Errorf("a Create whose settings are the shim's: %v", err)
	}
}

// FuzzResolveSettings: the runtime options' body comes from the host's
// config; any bytes give settings (a linger of 0 or more) or E1080, never
// a panic.
func FuzzResolveSettings(f *testing.F) {
	f.Add([]byte("Linger = \"1m\"\nWarm = true\n"))
	f.Add([]byte(`Profile = "debug"`))
	f.Add([]byte("[x]\ny = 1\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		b, _ := proto.Marshal(&runtimeoptions.Options{ConfigBody: body})
		set, err := ResolveSettings(env(), &anypb.Any{TypeUrl: runtimeOptionsType, Value: b})
		if err != nil {
			if errcode.From(err).Code != errcode.ShimOptionsInvalid {
				t.Fatalf("not E1080: %v", err)
			}
			return
		}
		if set.Linger < 0 {
			t.Fatalf("a negative linger: %v", set.Linger)
		}
	})
}
