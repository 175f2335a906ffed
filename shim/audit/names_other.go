//go:build !amd64

package audit

// syscallNames is empty off amd64: counts are shown by number.
var syscallNames = map[uint32]string{}
