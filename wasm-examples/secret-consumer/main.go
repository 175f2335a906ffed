// Command secret-consumer reads the secret its manifest's [secrets] names
// api-key, at /run/secrets/api-key, and prints its SHA-256 (as sha256sum
// prints a file's), never the secret itself. With --try-write it also tries
// to change /run/secrets and prints each refusal.
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
)

const path = "/run/secrets/api-key"

func main() {
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "secret-consumer: %v\n", err)
		os.Exit(1)
	}
	sum := sha256.Sum256(b)
	fmt.Printf("%s  %s\n", hex.EncodeToString(sum[:]), path)
	if len(os.Args) > 1 && os.Args[1] == "--try-write" {
		tries := []struct {
			what string
			do   func() error
		}{
			{"overwrite " + path, func() error { return os.WriteFile(path, []byte("x"), 0o600) }},
			{"append to " + path, func() error {
				f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
				if err == nil {
					f.Close()
				}
				return err
			}},
			{"create /run/secrets/new", func() error { return os.WriteFile("/run/secrets/new", []byte("x"), 0o600) }},
			{"remove " + path, func() error { return os.Remove(path) }},
			{"mkdir /run/secrets/d", func() error { return os.Mkdir("/run/secrets/d", 0o700) }},
		}
		for _, t := range tries {
			if err := t.do(); err != nil {
				fmt.Printf("%s: refused: %v\n", t.what, err)
			} else {
				fmt.Printf("%s: allowed\n", t.what)
			}
		}
	}
}
