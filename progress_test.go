package ampoule

import (
	"bytes"
	"strings"
	"testing"
)

// TestSizeText: each unit from its threshold up.
func TestSizeText(t *testing.T) {
	for n, want := range map[int64]string{0: "0 bytes", 1023: "1023 bytes", 1024: "1 KiB", 340 << 10: "340 KiB",
		2726298: "2.6 MiB", 3 << 30: "3.0 GiB"} {
		if got := SizeText(n); got != want {
			t.Errorf("SizeText(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestCompileProgressNeedsATerminal: where the stream is no terminal, no
// progress is shown at all.
func TestCompileProgressNeedsATerminal(t *testing.T) {
	if CompileProgress(&bytes.Buffer{}, 0) != nil {
		t.Error("a progress line for a stream that is not a terminal")
	}
}

// TestCacheStatsWriteText: a cache not made yet says so; one made shows
// its entries, size and versions.
func TestCacheStatsWriteText(t *testing.T) {
	var b strings.Builder
	CacheStats{Dir: "/c"}.WriteText(&b)
	if b.String() != "path:    /c\nentries: 0 (no cache yet)\n" {
		t.Errorf("%q", b.String())
	}
	b.Reset()
	CacheStats{Dir: "/c", Exists: true, Entries: 2, Bytes: 3 << 20, Versions: []string{"v1"}}.WriteText(&b)
	if b.String() != "path:    /c\nentries: 2\nsize:    3.0 MiB\nversion: v1\n" {
		t.Errorf("%q", b.String())
	}
}
