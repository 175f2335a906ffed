package audit

import (
	"errors"
	"os"
	"testing"
)

// TestAuditCountsThisProcess attaches to the test process itself and checks
// that calls it makes are counted. It needs root (eBPF); CI runs as root.
func TestAuditCountsThisProcess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the eBPF audit needs root (CAP_BPF, CAP_PERFMON); CI runs as root")
	}
	a, err := Start(uint32(os.Getpid()))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for i := 0; i < 25; i++ {
		os.Getpid()
	}
	counts, err := a.Counts()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, c := range counts {
		got[c.Name] = c.Count
	}
	if got["getpid"] < 25 {
		t.Errorf("getpid counted %d times, want at least 25: %v", got["getpid"], counts)
	}
	for i := 1; i < len(counts); i++ {
		if counts[i].Count > counts[i-1].Count {
			t.Fatalf("counts not sorted: %v", counts)
		}
	}
	if err := a.Reset(); err != nil {
		t.Fatal(err)
	}
	os.Getpid()
	counts, _ = a.Counts()
	for _, c := range counts {
		if c.Name == "getpid" && c.Count > 2 {
			t.Errorf("Reset left getpid at %d", c.Count)
		}
	}
}

func TestAuditOfAnotherProcessIgnoresUs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the eBPF audit needs root (CAP_BPF, CAP_PERFMON); CI runs as root")
	}
	a, err := Start(1) // init: not this process
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	for i := 0; i < 25; i++ {
		os.Getpid()
	}
	counts, _ := a.Counts()
	for _, c := range counts {
		if c.Name == "getpid" && c.Count >= 25 {
			t.Errorf("calls of another process were counted: %v", counts)
		}
	}
}

func TestStartWithoutPrivilegeSaysWhy(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("runs only without root, where the audit must refuse with a reason")
	}
	_, err := Start(uint32(os.Getpid()))
	if !errors.Is(err, ErrUnavailable) {
		t.Errorf("Start without root: %v, want ErrUnavailable", err)
	}
}

func TestName(t *testing.T) {
	if n := Name(39); n != "getpid" && n != "syscall_39" {
		t.Errorf("Name(39) = %q", n)
	}
	if n := Name(9999); n != "syscall_9999" {
		t.Errorf("Name(9999) = %q", n)
	}
}
