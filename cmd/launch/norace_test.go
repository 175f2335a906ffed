//go:build !race

package main

import "testing"

// runnerExe is the runner the in-process runs start: this test binary
// (empty), which TestMain turns into a runner.
func runnerExe(*testing.T) string { return "" }
