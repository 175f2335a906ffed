// Command notebook keeps notes across runs in its sealed mount, /sealed:
// each run counts itself, appends its arguments as one note and prints
// every note so far. The host's disk holds only the store, ciphertext that
// opens under this bundle's measurement and no other.
package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

const dir = "/sealed"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "notebook: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	count := 0
	switch b, err := os.ReadFile(dir + "/count"); {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return err
	default:
		if count, err = strconv.Atoi(strings.TrimSpace(string(b))); err != nil {
			return fmt.Errorf("%s/count: %v", dir, err)
		}
	}
	count++
	if err := os.WriteFile(dir+"/count", []byte(strconv.Itoa(count)+"\n"), 0o600); err != nil {
		return err
	}
	if len(args) > 0 {
		if err := os.MkdirAll(dir+"/notes", 0o700); err != nil {
			return err
		}
		f, err := os.OpenFile(dir+"/notes/notes.txt", os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		_, werr := fmt.Fprintf(f, "run %d: %s\n", count, strings.Join(args, " "))
		if err := errors.Join(werr, f.Close()); err != nil {
			return err
		}
	}
	fmt.Printf("notebook: run %d\n", count)
	notes, err := os.ReadFile(dir + "/notes/notes.txt")
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Println("no notes yet; add one with: launch run wasm-examples/notebook -- some words")
		return nil
	}
	if err != nil {
		return err
	}
	os.Stdout.Write(notes)
	return nil
}
