//go:build race

package sandbox

// raceEnabled: the test binary is built with the race detector.
const raceEnabled = true
