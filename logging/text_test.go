package logging

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// textLog writes msgs as writeLog does, through NewTextWriter, each write
// of the log writer passed on as it comes.
func textLog(t testing.TB, id *Identity, msgs ...string) []byte {
	t.Helper()
	var text bytes.Buffer
	tw := NewTextWriter(&text)
	bin := writeLog(t, id, "r", msgs...)
	// The binary log in writes of odd sizes, the header line cut too.
	sizes := rand.New(rand.NewPCG(1, 2))
	for p := bin; len(p) > 0; {
		n := min(len(p), 1+sizes.IntN(5000))
		if _, err := tw.Write(p[:n]); err != nil {
			t.Fatal(err)
		}
		p = p[n:]
	}
	return text.Bytes()
}

// cri is the CRI log file containerd makes of a container's stdout
// (out) and a stderr line: every line stamped with its time, stream and
// tag, a line longer than max in parts (P) ending with a full one (F), a
// '\r' before a '\n' dropped, as containerd's redirectLogs does.
func cri(out []byte, max int) []byte {
	var b bytes.Buffer
	stamp := func(stream, tag string, content []byte) {
		fmt.Fprintf(&b, "2026-12-03T14:15:16.123456789Z %s %s %s\n", stream, tag, content)
	}
	stamp("stderr", "F", []byte("launch: warning: insecure"))
	for len(out) > 0 {
		line, rest, full := bytes.Cut(out, []byte("\n"))
		out = rest
		line = bytes.TrimSuffix(line, []byte("\r"))
		for len(line) > max {
			stamp("stdout", "P", line[:max])
			line = line[max:]
		}
		if full {
			stamp("stdout", "F", line)
		} else {
			stamp("stdout", "P", line)
		}
	}
	return b.Bytes()
}

// A log's text form, and that form inside a CRI log file (parts of long
// lines joined, stderr lines skipped), read as the binary log: the same
// records, authenticated the same way. A binary log with a "\r\n" in its
// frames does not survive CRI, which is why a container's log is text.
func TestTextForm(t *testing.T) {
	id := newID(t)
	msgs := []string{"hello", strings.Repeat("x", 9000), "world\r\n", strings.Repeat("y\r\n", 3000)}
	text := textLog(t, id, msgs...)
	if !bytes.HasPrefix(text, []byte(TextMagic+"\nampoule-log v3 ")) || bytes.ContainsAny(text, "\r\x00") {
		t.Fatalf("the text form is not lines of text after the header: %.80q", text)
	}
	for name, log := range map[string][]byte{"text": text, "cri": cri(text, 16<<10), "cri, short lines": cri(text, 100)} {
		recs, err := readAll(log, id)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(recs) != len(msgs) {
			t.Errorf("%s: %d records, want %d", name, len(recs), len(msgs))
			continue
		}
		for i, r := range recs {
			if string(r.Message) != msgs[i] {
				t.Errorf("%s: record %d is %.40q, want %.40q", name, i, r.Message, msgs[i])
			}
		}
	}
	// The binary form inside a CRI log: read as it is, which holds
	// unless CRI dropped a '\r'.
	bin := writeLog(t, id, "r", "hi")
	if recs, err := readAll(cri(bin, 16<<10), id); !bytes.Contains(bin, []byte("\r\n")) && (err != nil || len(recs) != 1) {
		t.Errorf("a binary log in a CRI log file: %v, %d records", err, len(recs))
	}
}

// A text form cut short is truncated, a line of it changed is refused,
// and a CRI log file's line that is not one fails as a format error.
func TestTextFormRefuses(t *testing.T) {
	id := newID(t)
	text := textLog(t, id, "hello", strings.Repeat("x", 9000), "world")
	if n := bytes.Count(text, []byte("\n")); n < 5 {
		t.Fatalf("the text form has %d lines, the test wants more", n)
	}
	cut := text[:len(text)-10]
	if _, err := readAll(cut, id); !errors.Is(err, ErrTruncated) {
		t.Errorf("cut short: %v, want truncated", err)
	}
	ls := bytes.Split(text, []byte("\n"))
	ls[3] = append([]byte("!"), ls[3][1:]...)
	if _, err := readAll(bytes.Join(ls, []byte("\n")), id); !errors.Is(err, ErrFormat) {
		t.Errorf("a line not base64: %v, want a format error", err)
	}
	ls = bytes.Split(text, []byte("\n"))
	ls[2], ls[3] = ls[3], ls[2]
	if _, err := readAll(bytes.Join(ls, []byte("\n")), id); err == nil {
		t.Error("two lines swapped: read")
	}
	bad := append(cri(text, 16<<10), "not a CRI line\n"...)
	if _, err := readAll(bad, id); !errors.Is(err, ErrFormat) && !errors.Is(err, ErrTampered) {
		t.Errorf("a CRI log file with a stray line: %v", err)
	}
}
