package main

import (
	"context"
	"flag"
	"fmt"

	"github.com/ampoule-run/ampoule/ociimage"
)

func cmdImage(fs *flag.FlagSet) action {
	out := fs.String("o", "", "build: the new OCI image layout tar to write")
	name := fs.String("name", "", "build: the image's reference, as ctr image import names it (example.com/hello:1.0)")
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		digest, err := ociimage.Build(in.Pos[0], *out, *name)
		if err != nil {
			return e.fail(err)
		}
		fmt.Fprintf(e.stdout, "%s %s %s\n", *out, *name, digest)
		return 0
	}
}
