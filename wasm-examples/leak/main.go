// Command leak tries to push the secret in its SECRET variable out to the
// host every way a workload can: a test vehicle for the static profiles,
// which must carry it only inside the encrypted log. Modes:
//
//	stdout stderr panic trap exit path flood all
package main

import (
	"fmt"
	"os"
	"strings"
	"unsafe"
)

func main() {
	secret := os.Getenv("SECRET")
	mode := "all"
	if len(os.Args) > 1 {
		mode = os.Args[1]
	}
	fmt.Printf("argv: %q\n", os.Args)
	switch mode {
	case "stdout":
		fmt.Println("stdout:", secret)
	case "stderr":
		fmt.Fprintln(os.Stderr, "stderr:", secret)
	case "panic":
		panic("panic: " + secret)
	case "trap":
		fmt.Fprintln(os.Stderr, "about to trap:", secret)
		var x uint64
		fmt.Println(*(*uint64)(unsafe.Add(unsafe.Pointer(&x), 0xf0000000)))
	case "exit":
		os.Exit(int(secret[len(secret)-1]))
	case "path":
		_, err := os.Open("/" + secret)
		fmt.Fprintln(os.Stderr, "path:", err)
	case "flood":
		line := strings.Repeat(secret+" ", 64) + "\n"
		for {
			os.Stdout.WriteString(line)
		}
	case "all":
		fmt.Println("stdout:", secret)
		fmt.Fprintln(os.Stderr, "stderr:", secret)
		_, err := os.Open("/" + secret)
		fmt.Fprintln(os.Stderr, "path:", err)
		panic("panic: " + secret)
	}
}
