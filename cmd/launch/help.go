package main

import (
	"context"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/cmdline"
)

func doHelp(ctx context.Context, e *cliEnv, c command, args []string) int {
	fs := e.newFlagSet(c)
	pos, rest, err := e.parse(c, fs, args)
	switch {
	case err == errHelp:
		return 0
	case err != nil:
		return e.fail(err)
	case len(pos)+len(rest) == 0:
		printUsage(e.stdout)
		return 0
	}
	for _, other := range commands() {
		if other.name == pos[0] {
			printCommandHelp(e.stdout, other)
			return 0
		}
	}
	return e.fail(unknownCommand(pos[0]))
}

func doMan(ctx context.Context, e *cliEnv, c command, args []string) int {
	if done, code := e.parseNoArgs(c, e.newFlagSet(c), args); done {
		return code
	}
	if err := cmdline.Man(e.stdout, "launch", intro, docs()); err != nil {
		return e.fail(errcode.Errorf(errcode.Internal, "writing the man page: %w", err))
	}
	return 0
}

func doCompletion(ctx context.Context, e *cliEnv, c command, args []string) int {
	shell, args, done, code := e.subcommand(c, args)
	if done {
		return code
	}
	if done, code := e.parseNoArgs(c, e.newFlagSet(c), args); done {
		return code
	}
	if err := cmdline.Completion(e.stdout, shell, "launch", docs()); err != nil {
		return e.fail(errcode.Errorf(errcode.Internal, "writing the completion script: %w", err))
	}
	return 0
}
