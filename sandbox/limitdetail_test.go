package sandbox

import (
	"strings"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
)

// TestLimitDetailStatesTheValue: each limit's error names the limit and
// its value as the run had it, in the unit a manifest would write.
func TestLimitDetailStatesTheValue(t *testing.T) {
	s := &Spec{
		MemoryPages: 1024, WallTime: 90 * time.Second, OutputBytes: 1536 << 10, OpenFiles: 16,
		FileOutputBytes: 1000, HostCalls: 5000,
		Dirs: []Mount{{Guest: "/data"}, {Guest: "/sealed", MaxBytes: 2 << 30}},
	}
	for code, want := range map[errcode.Code]string{
		errcode.MemoryLimit:     "memory limit 64 MiB reached: the workload reached its memory limit",
		errcode.WallTimeLimit:   "wall-time limit 1m30s reached: ",
		errcode.OutputLimit:     "output limit 1536 KiB reached: ",
		errcode.OpenFilesLimit:  "open-files limit 16 reached: ",
		errcode.FileOutputLimit: "file-output limit 1000 bytes reached: ",
		errcode.HostCallLimit:   "host-call limit 5000 reached: ",
		errcode.SealedSizeLimit: "sealed mount's limit 2 GiB reached: ",
	} {
		got := limitDetail(code, s)
		if !strings.HasPrefix(got, want) {
			t.Errorf("E%d: %q, want it to start %q", code, got, want)
		}
	}
	if got := limitDetail(errcode.Internal, s); got != errcode.Internal.Text() {
		t.Errorf("another code: %q", got)
	}
}
