package sandbox

import (
	goruntime "runtime"
	"runtime/debug"
	"testing"
)

// TestVersionsFrom reads the main module's version, wazero's and the VCS
// stamp from build information, and says "(devel)" and "unknown" without.
func TestVersionsFrom(t *testing.T) {
	bi := &debug.BuildInfo{
		Main: debug.Module{Path: "github.com/ampoule-run/ampoule", Version: "v1.2.3"},
		Deps: []*debug.Module{{Path: "golang.org/x/sys", Version: "v0.1.0"}, {Path: "github.com/tetratelabs/wazero", Version: "v1.12.0"}},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"}, {Key: "vcs.revision", Value: "0123abcd"}, {Key: "vcs.modified", Value: "true"},
		},
	}
	want := VersionInfo{Launch: "v1.2.3", Commit: "0123abcd", Modified: true, Wazero: "v1.12.0", Go: goruntime.Version()}
	if got := versionsFrom(bi, true); got != want {
		t.Errorf("versionsFrom = %+v, want %+v", got, want)
	}
	none := VersionInfo{Launch: "(devel)", Wazero: "unknown", Go: goruntime.Version()}
	if got := versionsFrom(nil, false); got != none {
		t.Errorf("without build information: %+v, want %+v", got, none)
	}
	bi.Settings[2].Value = "false"
	if got := versionsFrom(bi, true); got.Modified {
		t.Errorf("vcs.modified=false read as modified: %+v", got)
	}
}
