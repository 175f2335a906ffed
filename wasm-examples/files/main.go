// Command files reads every file under /data, prints a line and byte count for
// each, shows that /data is read-only, and writes a report to /out when /out is
// mounted writable.
package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
)

func main() {
	entries, err := os.ReadDir("/data")
	if err != nil {
		fmt.Fprintf(os.Stderr, "files: %v\n", err)
		os.Exit(1)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if e.Type().IsRegular() {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var report bytes.Buffer
	for _, n := range names {
		b, err := os.ReadFile(path.Join("/data", n))
		if err != nil {
			fmt.Fprintf(os.Stderr, "files: %v\n", err)
			os.Exit(1)
		}
		fmt.Fprintf(&report, "%s: %d lines, %d bytes\n", n, bytes.Count(b, []byte("\n")), len(b))
	}
	os.Stdout.Write(report.Bytes())

	if err := os.WriteFile("/data/written-by-guest.txt", []byte("x"), 0o644); err != nil {
		fmt.Printf("write to /data refused: %v\n", err)
	} else {
		fmt.Println("write to /data succeeded (the mount is writable)")
	}

	if st, err := os.Stat("/out"); err == nil && st.IsDir() {
		if err := os.WriteFile("/out/report.txt", report.Bytes(), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "files: writing /out/report.txt: %v\n", err)
			os.Exit(1)
		}
		fmt.Println("wrote /out/report.txt")
	} else if !os.IsNotExist(err) && err != nil && !isNotExist(err) {
		fmt.Fprintf(os.Stderr, "files: %v\n", err)
	}
}

func isNotExist(err error) bool { return err != nil && (os.IsNotExist(err) || err == fs.ErrNotExist) }
