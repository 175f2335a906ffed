//go:build !race

package ampoule

import "testing"

// testRunner is the runner a test's Server starts: this test binary
// (empty), which TestMain turns into a runner.
func testRunner(testing.TB) string { return "" }
