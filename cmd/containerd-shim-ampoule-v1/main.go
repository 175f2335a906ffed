// Command containerd-shim-ampoule-v1 is containerd's runtime shim for
// Ampoule (runtime type io.containerd.ampoule.v1): containerd starts it for
// each container (or pod) whose runtime is ampoule, and it runs the
// container's bundle as 'launch run' would. See package ctrshim.
package main

import (
	"context"
	"os"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/ctrshim"
)

func main() {
	// The shim is its runs' runner too.
	ampoule.RunnerMain()
	os.Exit(ctrshim.Main(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}
