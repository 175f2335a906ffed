//go:build race

package main

// corpusWallTime is the hostile corpus's wall-time limit under the race
// detector. The runner is this test binary, instrumented, so wazero's own
// Go code (growing a deep recursion's stack, say) runs many times slower:
// a trap that comes in milliseconds otherwise can outlast a second.
const corpusWallTime = "5s"
