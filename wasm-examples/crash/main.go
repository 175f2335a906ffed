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
package main

import (
	"fmt"
	"os"
	"strconv"
	"time"
	"unsafe"
)

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
		var keep [][]byte
		for {
			b := make([]byte, 8<<20)
			for i := 0; i < len(b); i += 4096 {
				b[i] = 1
			}
			keep = append(keep, b)
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
	default:
		fmt.Fprintf(os.Stderr, "crash: unknown mode %q\n", mode)
		os.Exit(64)
	}
}
