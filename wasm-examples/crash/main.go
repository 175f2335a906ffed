// Command crash fails on purpose, in the way its first argument names:
//
//	panic       a Go panic (the Go runtime exits with status 2)
//	trap        a WebAssembly trap: a load outside linear memory
//	exit N      exit with status N
//	oom         allocate until memory runs out
//	spin        loop forever without a host call
//	sleep       sleep for an hour inside poll_oneoff
//	stdin       block reading stdin
//	flood       write to stdout forever
//	fds DIR     open files in DIR and keep them open, forever
//	fill DIR    write DIR/fill.bin one MiB at a time, forever
//	churn DIR   open, read and close files and DIR itself 1000 times (not a crash)
//	nap MS      sleep MS milliseconds in one poll_oneoff, then print "napped" (not a crash)
//	work N      compute N million rounds of xorshift, then print the result (not a crash)
//	echo        copy stdin to stdout, then print how many bytes (not a crash)
package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
	"unsafe"
)

// kept holds what oom allocates and fds opens, so that neither can be
// collected or closed while the mode runs.
var kept struct {
	blocks [][]byte
	files  []*os.File
}

func main() {
	mode := "panic"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	fmt.Fprintf(os.Stderr, "crash: mode %s\n", mode)
	switch mode {
	case "panic":
		panic("crash: deliberate panic")
	case "trap":
		// 3.75 GiB past a heap variable lies beyond any memory this
		// module may have, so the load traps (out of bounds).
		var x uint64
		p := (*uint64)(unsafe.Add(unsafe.Pointer(&x), 0xf0000000))
		fmt.Println(*p)
	case "exit":
		code := 3
		if len(os.Args) > 2 {
			code, _ = strconv.Atoi(os.Args[2])
		}
		os.Exit(code)
	case "oom":
		for {
			b := make([]byte, 8<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			kept.blocks = append(kept.blocks, b)
		}
	case "spin":
		n := 0
		for {
			n++
		}
	case "sleep":
		time.Sleep(time.Hour)
	case "stdin":
		buf := make([]byte, 1)
		n, err := os.Stdin.Read(buf)
		fmt.Println("stdin returned", n, err)
	case "flood":
		line := []byte("flood flood flood flood flood flood flood flood flood flood flood flood\n")
		for {
			os.Stdout.Write(line)
		}
	case "fds":
		for i := 0; ; i++ {
			f, err := os.Create(fmt.Sprintf("%s/fd-%d", os.Args[2], i))
			if err != nil {
				fmt.Fprintf(os.Stderr, "crash: after %d files: %v\n", i, err)
				os.Exit(1)
			}
			kept.files = append(kept.files, f)
		}
	case "churn":
		for i := 0; i < 1000; i++ {
			name := fmt.Sprintf("%s/churn-%d", os.Args[2], i%3)
			if err := os.WriteFile(name, []byte("x"), 0o644); err != nil {
				fmt.Fprintf(os.Stderr, "crash: churn %d: %v\n", i, err)
				os.Exit(1)
			}
			if _, err := os.ReadFile(name); err != nil {
				fmt.Fprintf(os.Stderr, "crash: churn %d: %v\n", i, err)
				os.Exit(1)
			}
			if _, err := os.ReadDir(os.Args[2]); err != nil {
				fmt.Fprintf(os.Stderr, "crash: churn %d: %v\n", i, err)
				os.Exit(1)
			}
		}
		fmt.Println("churned")
	case "fill":
		f, err := os.Create(os.Args[2] + "/fill.bin")
		if err != nil {
			fmt.Fprintf(os.Stderr, "crash: %v\n", err)
			os.Exit(1)
		}
		chunk := make([]byte, 1<<20)
		for n := 0; ; n++ {
			if _, err := f.Write(chunk); err != nil {
				fmt.Fprintf(os.Stderr, "crash: after %d MiB: %v\n", n, err)
				os.Exit(1)
			}
		}
	case "nap":
		ms := 1000
		if len(os.Args) > 2 {
			ms, _ = strconv.Atoi(os.Args[2])
		}
		time.Sleep(time.Duration(ms) * time.Millisecond)
		fmt.Println("napped")
	case "work":
		rounds := 100
		if len(os.Args) > 2 {
			rounds, _ = strconv.Atoi(os.Args[2])
		}
		x := uint64(88172645463325252)
		for i := 0; i < rounds*1000000; i++ {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
		}
		fmt.Printf("worked %x\n", x)
	case "echo":
		n, err := io.Copy(os.Stdout, os.Stdin)
		fmt.Printf("echo: %d bytes, %v\n", n, err)
	default:
		fmt.Fprintf(os.Stderr, "crash: unknown mode %q\n", mode)
		os.Exit(64)
	}
}
