// Command compute hashes a large buffer with SHA-256, many times: a CPU-bound
// workload for throughput benchmarks. Usage: compute [MiB [rounds]].
package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"strconv"
)

func main() {
	mib, rounds := 16, 1
	if len(os.Args) > 1 {
		mib = atoi(os.Args[1])
	}
	if len(os.Args) > 2 {
		rounds = atoi(os.Args[2])
	}
	buf := make([]byte, mib<<20)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	var sum [32]byte
	for r := 0; r < rounds; r++ {
		sum = sha256.Sum256(append(buf[:len(buf):len(buf)], sum[:]...)[:len(buf)])
		copy(buf, sum[:])
	}
	fmt.Printf("sha256 of %d MiB x %d: %x\n", mib, rounds, sum)
}

func atoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		fmt.Fprintf(os.Stderr, "compute: %q is not a positive number\n", s)
		os.Exit(2)
	}
	return n
}
