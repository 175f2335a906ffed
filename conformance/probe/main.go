// Command probe exercises one WASI preview 1 surface per invocation, for the
// conformance tests that compare 'launch run' with plain wazero:
//
//	probe args A B...        print argv
//	probe env                print the environment, sorted
//	probe echo               copy stdin to stdout, then write "done" to stderr
//	probe exit N             exit with status N
//	probe ls DIR             list DIR with each entry's type and size
//	probe cat FILE           print FILE
//	probe write FILE TEXT    create FILE with TEXT, then read it back
//	probe symlink OLD NEW     create a symbolic link NEW pointing at OLD
//	probe clock              check the wall and monotonic clocks move
//	probe random             check random_get returns varying bytes
package main

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fail("usage: probe MODE ...")
	}
	switch args := os.Args[2:]; os.Args[1] {
	case "args":
		fmt.Printf("%q\n", os.Args)
	case "env":
		env := os.Environ()
		sort.Strings(env)
		for _, kv := range env {
			fmt.Println(kv)
		}
	case "echo":
		n, err := io.Copy(os.Stdout, os.Stdin)
		if err != nil {
			fail(err.Error())
		}
		fmt.Fprintf(os.Stderr, "done %d\n", n)
	case "exit":
		code, _ := strconv.Atoi(args[0])
		os.Exit(code)
	case "ls":
		entries, err := os.ReadDir(args[0])
		if err != nil {
			fail(err.Error())
		}
		for _, e := range entries {
			info, err := e.Info()
			if err != nil {
				fail(err.Error())
			}
			size := info.Size()
			if e.IsDir() {
				size = 0
			}
			fmt.Printf("%s %v %d\n", e.Name(), e.Type(), size)
		}
	case "cat":
		b, err := os.ReadFile(args[0])
		if err != nil {
			fail(err.Error())
		}
		os.Stdout.Write(b)
	case "write":
		if err := os.WriteFile(args[0], []byte(args[1]), 0o644); err != nil {
			fail(err.Error())
		}
		b, err := os.ReadFile(args[0])
		if err != nil {
			fail(err.Error())
		}
		fmt.Printf("wrote and read %q\n", b)
	case "symlink":
		if err := os.Symlink(args[0], args[1]); err != nil {
			fail(err.Error())
		}
		fmt.Println("linked")
	case "clock":
		w0, m0 := time.Now(), time.Now()
		time.Sleep(20 * time.Millisecond)
		if d := time.Since(m0); d < 20*time.Millisecond {
			fail(fmt.Sprintf("slept 20ms but the monotonic clock moved %v", d))
		}
		if w0.Year() < 2024 {
			fail(fmt.Sprintf("the wall clock says %v", w0))
		}
		fmt.Println("clocks ok")
	case "random":
		a, b := make([]byte, 32), make([]byte, 32)
		rand.Read(a)
		rand.Read(b)
		if bytes.Equal(a, b) || bytes.Equal(a, make([]byte, 32)) {
			fail("random_get returned repeating bytes")
		}
		fmt.Println("random ok")
	default:
		fail("unknown mode " + os.Args[1])
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "probe:", msg)
	os.Exit(1)
}
