//go:build !race

package main

import "testing"

// corpusWallTime is the hostile corpus's wall-time limit.
const corpusWallTime = "1s"

// runnerExe is the runner the in-process runs start: this test binary
// (empty), which TestMain turns into a runner.
func runnerExe(*testing.T) string { return "" }
