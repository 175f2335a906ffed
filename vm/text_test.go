package vm

import (
	"strings"
	"testing"
)

// TestWriteText: a guest prints its measured inputs, then its launch
// measurements only once measured; a dry run adds the QEMU command line a
// shell reads back and says the files it names are gone.
func TestWriteText(t *testing.T) {
	g := &Guest{InitData: []byte("init-data"), Cmdline: "console=ttyS0", Profile: "staging"}
	var b strings.Builder
	g.WriteText(&b)
	if b.String() != g.Digests() || !strings.Contains(b.String(), "profile     staging\n") {
		t.Errorf("an unmeasured guest prints:\n%s", b.String())
	}
	g.Launch = &LaunchMeasurements{SNPLaunchMeasurements: []string{"ab12"}, Firmware: "cd34", VCPUs: 2, VCPUType: "EPYC"}
	b.Reset()
	g.WriteText(&b)
	if want := g.Digests() + g.Launch.Text(); b.String() != want || !strings.Contains(want, "snp_launch_measurement ab12\n") {
		t.Errorf("a measured guest prints:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	(&RunResult{Guest: g, Command: []string{"qemu-system-x86_64", "-append", "a b"}}).WriteText(&b)
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if n := len(lines); n < 2 || lines[n-2] != ShellLine([]string{"qemu-system-x86_64", "-append", "a b"}) || !strings.Contains(lines[n-1], "now removed") {
		t.Errorf("a dry run prints:\n%s", b.String())
	}
}
