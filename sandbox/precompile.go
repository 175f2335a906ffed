package sandbox

import (
	"os"
	"strings"
	"time"

	"golang.org/x/sys/cpu"

	"github.com/ampoule-run/ampoule/errcode"
)

// Precompile compiles module into dir, a compilation cache as Spec.CacheDir
// names one, with the runner executable exe, exactly as a supervised run
// of exe compiles it (wazero's optimizing compiler, no termination checks),
// and keeps the inspection's verdict beside the code. A later run of the
// same module by a program with the same wazero, on a processor with the
// same CompileFeatures, finds the code there instead of compiling; any
// other run finds nothing of its own there (wazero's key for an entry is
// the module's digest, wazero's version and those features) and compiles.
// memoryPages is the run's memory limit, which the inspection checks the
// module against; bound bounds the compile.
func Precompile(exe string, module []byte, memoryPages uint32, dir string, bound time.Duration) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return errcode.Errorf(errcode.CacheUnavailable, "compiling ahead: %v", err)
	}
	w, err := Prepare(exe, Spec{Module: module, Name: "precompile", MemoryPages: memoryPages, CompileTime: bound, CacheDir: dir})
	if err != nil {
		return err
	}
	defer w.Kill()
	select {
	case <-w.Ready():
		return nil
	case <-w.Done():
		return errcode.Errorf(errcode.ModuleInvalid, "compiling ahead: the runner ended before the module compiled (a module that does not inspect or compile, or past its compile bound of %v)", bound)
	}
}

// CompileFeatures are the processor's features that change the code wazero
// compiles for x86-64 and name its cache entries (SSE4.1, BMI1, and ABM:
// LZCNT and POPCNT with BMI1 and BMI2), as wazero reads them. Code compiled
// on one machine is found on another only where these are the same.
type CompileFeatures struct {
	SSE41, BMI1, BMI2, POPCNT bool
}

// HostCompileFeatures are this processor's.
func HostCompileFeatures() CompileFeatures {
	return CompileFeatures{SSE41: cpu.X86.HasSSE41, BMI1: cpu.X86.HasBMI1, BMI2: cpu.X86.HasBMI2, POPCNT: cpu.X86.HasPOPCNT}
}

// String names the features present, as QEMU spells them, or "none".
func (f CompileFeatures) String() string {
	var on []string
	for _, x := range f.qemu() {
		if x.on {
			on = append(on, x.name)
		}
	}
	if len(on) == 0 {
		return "none"
	}
	return strings.Join(on, " ")
}

// QEMUCPU is a QEMU -cpu value: the model with each of these features
// turned on or off as f has it, so that the guest's processor offers
// wazero exactly the features code was compiled for.
func (f CompileFeatures) QEMUCPU(model string) string {
	s := model
	for _, x := range f.qemu() {
		v := "off"
		if x.on {
			v = "on"
		}
		s += "," + x.name + "=" + v
	}
	return s
}

func (f CompileFeatures) qemu() []struct {
	name string
	on   bool
} {
	return []struct {
		name string
		on   bool
	}{{"sse4.1", f.SSE41}, {"bmi1", f.BMI1}, {"bmi2", f.BMI2}, {"popcnt", f.POPCNT}}
}
