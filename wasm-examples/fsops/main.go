// Command fsops runs file-system operations given as arguments, one per
// argument, and prints each outcome: what a test of path confinement needs
// from a guest that attacks its mounts.
//
//	read PATH            print the file's contents
//	copy FROM TO         copy a file (what a guest does with what it read)
//	write PATH TEXT      create or replace a file
//	append PATH TEXT     append to a file
//	mkdir PATH           make a directory
//	rmdir PATH           remove a directory
//	rm PATH              remove a file or link
//	mv FROM TO           rename
//	ln OLD NEW           hard link
//	symlink TARGET NEW   symbolic link
//	readlink PATH        print a link's target
//	stat PATH            print the mode and size (following links)
//	lstat PATH           the same, not following a final link
//	ls PATH              list a directory
//	touch PATH           set the times (following links)
//	truncate PATH SIZE   truncate (or grow) a file
//	pwrite PATH OFF TEXT write at an offset
//	walk N PATH...       read each PATH N times, printing a line per success
//
// Each operation prints "OP ok ..." or "OP error: ...". The program exits 0
// whatever the outcomes, so that a test reads them all.
package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

func main() {
	args := os.Args[1:]
	for len(args) > 0 {
		op := args[0]
		n := arity[op]
		if n == 0 || len(args) < n+1 && op != "walk" {
			fmt.Printf("%s error: unknown operation or missing arguments\n", op)
			os.Exit(2)
		}
		if op == "walk" {
			count, _ := strconv.Atoi(args[1])
			walk(count, args[2:])
			return
		}
		do(op, args[1:n+1])
		args = args[n+1:]
	}
}

var arity = map[string]int{
	"read": 1, "copy": 2, "write": 2, "append": 2, "mkdir": 1, "rmdir": 1, "rm": 1, "mv": 2,
	"ln": 2, "symlink": 2, "readlink": 1, "stat": 1, "lstat": 1, "ls": 1, "touch": 1,
	"truncate": 2, "pwrite": 3, "walk": -1,
}

func do(op string, a []string) {
	var out string
	var err error
	switch op {
	case "read":
		var b []byte
		b, err = os.ReadFile(a[0])
		out = string(b)
	case "copy":
		var b []byte
		if b, err = os.ReadFile(a[0]); err == nil {
			err = os.WriteFile(a[1], b, 0o644)
		}
	case "write":
		err = os.WriteFile(a[0], []byte(a[1]), 0o644)
	case "append":
		var f *os.File
		if f, err = os.OpenFile(a[0], os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
			_, err = io.WriteString(f, a[1])
			f.Close()
		}
	case "mkdir":
		err = os.Mkdir(a[0], 0o755)
	case "rmdir", "rm":
		err = os.Remove(a[0])
	case "mv":
		err = os.Rename(a[0], a[1])
	case "ln":
		err = os.Link(a[0], a[1])
	case "symlink":
		err = os.Symlink(a[0], a[1])
	case "readlink":
		out, err = os.Readlink(a[0])
	case "stat", "lstat":
		var fi os.FileInfo
		if op == "stat" {
			fi, err = os.Stat(a[0])
		} else {
			fi, err = os.Lstat(a[0])
		}
		if err == nil {
			out = fmt.Sprintf("%v %d", fi.Mode(), fi.Size())
		}
	case "ls":
		var es []os.DirEntry
		es, err = os.ReadDir(a[0])
		for _, e := range es {
			out += e.Name() + " "
		}
	case "touch":
		t := time.Unix(1_000_000_000, 0)
		err = os.Chtimes(a[0], t, t)
	case "truncate":
		var size int64
		size, err = strconv.ParseInt(a[1], 10, 64)
		if err == nil {
			err = os.Truncate(a[0], size)
		}
	case "pwrite":
		var off int64
		var f *os.File
		if off, err = strconv.ParseInt(a[1], 10, 64); err == nil {
			if f, err = os.OpenFile(a[0], os.O_WRONLY|os.O_CREATE, 0o644); err == nil {
				_, err = f.WriteAt([]byte(a[2]), off)
				f.Close()
			}
		}
	}
	if err != nil {
		fmt.Printf("%s error: %v\n", op, err)
		return
	}
	fmt.Printf("%s ok %s\n", op, out)
}

// walk reads each path count times and prints what it read, for a test
// that changes the paths under the guest meanwhile.
func walk(count int, paths []string) {
	for i := 0; i < count; i++ {
		for _, p := range paths {
			if b, err := os.ReadFile(p); err == nil {
				fmt.Printf("walk read %s %q\n", p, b)
			}
		}
	}
	fmt.Println("walk done")
}
