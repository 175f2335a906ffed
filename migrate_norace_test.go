//go:build !race

package ampoule_test

import "testing"

// migrateRunner is the runner the sealed-store hand-on tests' runs start:
// this test binary (empty), which TestMain turns into a runner.
func migrateRunner(testing.TB) string { return "" }
