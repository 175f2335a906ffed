//go:build !race

package main

// corpusWallTime is the hostile corpus's wall-time limit.
const corpusWallTime = "1s"
