package main

import (
	"context"
	"flag"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/cmdline"
)

func cmdHelp(fs *flag.FlagSet) action {
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		if len(in.Pos) == 0 {
			printUsage(e.stdout)
			return 0
		}
		for _, other := range commands() {
			if other.name == in.Pos[0] {
				printCommandHelp(e.stdout, other)
				return 0
			}
		}
		return e.fail(usageError(cmdline.UnknownCommand("launch", in.Pos[0], docs())))
	}
}

func cmdMan(fs *flag.FlagSet) action {
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		if err := cmdline.Man(e.stdout, "launch", intro, docs()); err != nil {
			return e.fail(errcode.Errorf(errcode.Internal, "writing the man page: %w", err))
		}
		return 0
	}
}

func cmdCompletion(fs *flag.FlagSet) action {
	return func(ctx context.Context, e *cliEnv, c command, in invocation) int {
		shell := in.Sub
		if err := cmdline.Completion(e.stdout, shell, "launch", docs()); err != nil {
			return e.fail(errcode.Errorf(errcode.Internal, "writing the completion script: %w", err))
		}
		return 0
	}
}
