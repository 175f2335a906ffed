package ampoule_test

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/logging"
	"github.com/ampoule-run/ampoule/tee"
)

// corpusOutcome is how a run ended, as the corpus states it: the error's
// code, or WorkloadExit for a workload's own non-zero exit, and the exit
// code the caller was given.
func corpusOutcome(res ampoule.Result, err error) (errcode.Code, uint32) {
	switch {
	case err != nil:
		return errcode.From(err).Code, res.ExitCode
	case res.ExitCode != 0:
		return errcode.WorkloadExit, res.ExitCode
	}
	return 0, 0
}

// TestInterpretFirstHostileCorpus runs every module of the hostile corpus
// under debug and staging, from its manifest's limits, once with
// InterpretFirst and a cache that has never seen it and once compiling:
// the gate, the limits and the refusals are the same whichever engine runs
// the guest, so both runs end the same way, as the corpus says. Under
// debug the log must say that the first one ran interpreted wherever the
// module reached its first instruction.
func TestInterpretFirstHostileCorpus(t *testing.T) {
	simKey := filepath.Join(t.TempDir(), "sim.key")
	// The runner is the launch binary, built as shipped: this test
	// binary's own, under -race, holds several times a runner's memory,
	// and the resident bound the corpus's limits imply would end it first.
	corpusRunner := testwasm.Launch(t)
	memory := newMemoryTier(t)
	interpreted := 0
	for _, tc := range testwasm.HostileCorpus(t) {
		t.Run(tc.Name, func(t *testing.T) {
			bundle := testwasm.HostileBundle(t, tc)
			for _, profile := range []string{"debug", "staging"} {
				type ending struct {
					code errcode.Code
					exit uint32
				}
				var endings [2]ending
				for i, interpret := range []bool{true, false} {
					var stderr testwasm.SyncBuffer
					cfg := ampoule.Config{Profile: profile, Backend: tee.KindSim, SimKey: simKey, CacheDir: t.TempDir(), Runner: corpusRunner,
						InterpretFirst: interpret, Stdout: io.Discard, Stderr: &stderr, Warnings: io.Discard}
					if profile == "debug" {
						cfg.LogLevel = hclog.Info // its records, to stderr
					} else {
						cfg.CodeMemory = memory
					}
					res, err := ampoule.Run(context.Background(), bundle, cfg)
					code, exit := corpusOutcome(res, err)
					endings[i] = ending{code, exit}
					if profile == "debug" && interpret && strings.Contains(stderr.String(), "cache=") {
						if !strings.Contains(stderr.String(), "cache=interpreted") {
							t.Errorf("debug: the run with InterpretFirst was not interpreted:\n%s", stderr.String())
						}
						interpreted++
					}
				}
				if endings[0] != endings[1] {
					t.Errorf("%s: interpreted first it ends with %v (exit %d), compiling with %v (exit %d)",
						profile, endings[0].code, endings[0].exit, endings[1].code, endings[1].exit)
				}
				want := ending{code: tc.Expect}
				switch {
				case profile == "debug" && tc.DebugExit > 0:
					want = ending{errcode.WorkloadExit, uint32(tc.DebugExit)}
				case profile == "debug" && tc.DebugExit == 0:
					want = ending{}
				}
				// The corpus gives a process's exit status, the low byte of
				// the workload's exit code.
				if got := endings[0]; got.code != want.code || want.exit != 0 && got.exit&0xff != want.exit {
					t.Errorf("%s, interpreted first: %v (exit %d), want %v%s", profile, got.code, got.exit, want.code, exitText(want.exit))
				}
			}
		})
	}
	if interpreted < 15 {
		t.Errorf("only %d corpus modules ran interpreted under debug", interpreted)
	}
}

func exitText(exit uint32) string {
	if exit == 0 {
		return ""
	}
	return fmt.Sprintf(" (exit %d)", exit)
}

// TestInterpretFirstMemoryLimit: a Go guest that grows its memory past the
// manifest's limit ends with E4001 under debug and staging, interpreted
// first as when compiling.
func TestInterpretFirstMemoryLimit(t *testing.T) {
	id, err := logging.GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	bundle := crashBundle(t, testwasm.Module(t, "crash"), id, "oom")
	simKey := filepath.Join(t.TempDir(), "sim.key")
	for _, profile := range []string{"debug", "staging"} {
		for _, interpret := range []bool{true, false} {
			var stderr testwasm.SyncBuffer
			cfg := ampoule.Config{Profile: profile, Backend: tee.KindSim, SimKey: simKey, CacheDir: t.TempDir(),
				InterpretFirst: interpret, Stdout: io.Discard, Stderr: &stderr, Warnings: io.Discard, LogLevel: hclog.Info}
			var sink bufferSink
			if profile == "staging" {
				cfg.CodeMemory = newMemoryTier(t)
				cfg.LogSink = func() (io.WriteCloser, error) { return &sink, nil }
			}
			res, err := ampoule.Run(context.Background(), bundle, cfg)
			if code, _ := corpusOutcome(res, err); code != errcode.MemoryLimit {
				t.Errorf("%s, interpret-first %v: %v (exit %d), want %v", profile, interpret, err, res.ExitCode, errcode.MemoryLimit)
			}
			records := stderr.String() // debug's, to stderr; staging's, in the tenant's log
			if profile == "staging" {
				r, err := ampoule.OpenLog(&sink, id, ampoule.LogCheck{})
				if err != nil {
					t.Fatal(err)
				}
				records, _ = logText(t, r)
			}
			if interpret && !strings.Contains(records, "cache=interpreted") {
				t.Errorf("%s: the run with InterpretFirst was not interpreted:\n%s", profile, records)
			}
		}
	}
}
