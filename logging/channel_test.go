package logging

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

func newID(t testing.TB) *Identity {
	t.Helper()
	id, err := GenerateIdentity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// writeLog writes msgs (stdout, then stderr alternately) and returns the log.
func writeLog(t testing.TB, id *Identity, ref string, msgs ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := NewWriter(&buf, id.Recipient(), Header{Ref: ref, Measurement: "m", Profile: "staging", Started: time.Unix(0, 0).UTC()}, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs {
		src := SourceStdout
		if i%2 == 1 {
			src = SourceStderr
		}
		w.Log(LevelInfo, src, []byte(m))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readAll(log []byte, id *Identity) ([]*Record, error) {
	r, err := NewReader(bytes.NewReader(log), id)
	if err != nil {
		return nil, err
	}
	var out []*Record
	for {
		rec, err := r.Next()
		if err == io.EOF {
			// Nothing may follow the end record.
			if _, err := r.Next(); err != io.EOF {
				return out, err
			}
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, rec)
	}
}

func TestRoundTrip(t *testing.T) {
	id := newID(t)
	long := strings.Repeat("x", MaxMessage+10)
	log := writeLog(t, id, "ref1", "hello", "world", "", long)
	recs, err := readAll(log, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 { // the long message takes two records
		t.Fatalf("%d records", len(recs))
	}
	if string(recs[0].Message) != "hello" || recs[0].Source != SourceStdout || string(recs[1].Message) != "world" || recs[1].Source != SourceStderr {
		t.Errorf("records: %q %v %q %v", recs[0].Message, recs[0].Source, recs[1].Message, recs[1].Source)
	}
	if got := string(recs[3].Message) + string(recs[4].Message); got != long {
		t.Error("a long message did not come back whole")
	}
	for i, r := range recs {
		if r.Seq != uint64(i) {
			t.Errorf("record %d has seq %d", i, r.Seq)
		}
	}
	r, _ := NewReader(bytes.NewReader(log), id)
	if h := r.Header(); h.Ref != "ref1" || h.Profile != "staging" || h.Measurement != "m" {
		t.Errorf("header: %+v", h)
	}
}

func lines(log []byte) [][]byte {
	return bytes.SplitAfter(bytes.TrimSuffix(log, []byte("\n")), []byte("\n"))
}

func join(ls [][]byte) []byte {
	var b []byte
	for _, l := range ls {
		b = append(b, l...)
		if !bytes.HasSuffix(l, []byte("\n")) {
			b = append(b, '\n')
		}
	}
	return b
}

// TestTampering: every way of altering a log is refused with its error.
func TestTampering(t *testing.T) {
	id := newID(t)
	log := writeLog(t, id, "run-a", "one", "two", "three", "four")
	other := writeLog(t, id, "run-b", "one", "two", "three", "four")
	ls, os := lines(log), lines(other)
	if len(ls) != 6 { // header, 4 records, end
		t.Fatalf("%d lines", len(ls))
	}
	cp := func() [][]byte { return append([][]byte(nil), ls...) }
	for _, tc := range []struct {
		name string
		log  []byte
		want error
	}{
		{"drop a record", join(append(cp()[:2], ls[3:]...)), ErrTampered},
		{"reorder", join([][]byte{ls[0], ls[2], ls[1], ls[3], ls[4], ls[5]}), ErrTampered},
		{"duplicate", join([][]byte{ls[0], ls[1], ls[1], ls[2], ls[3], ls[4], ls[5]}), ErrTampered},
		{"drop the end", join(ls[:5]), ErrTruncated},
		{"cut mid-line", join(ls[:5])[:len(join(ls[:5]))-10], ErrTruncated},
		{"only the header", join(ls[:1]), ErrTruncated},
		{"splice another run's record", join([][]byte{ls[0], ls[1], os[2], ls[3], ls[4], ls[5]}), ErrTampered},
		{"another run's end", join([][]byte{ls[0], ls[1], ls[2], ls[3], ls[4], os[5]}), ErrTampered},
		{"another run's header", join(append([][]byte{os[0]}, ls[1:]...)), ErrTampered},
		{"trailing line", join(append(cp(), ls[2])), ErrTampered},
		{"empty", nil, ErrFormat},
		{"not a log", []byte("hello\n"), ErrFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := readAll(tc.log, id)
			if !errors.Is(err, tc.want) {
				t.Errorf("got %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := readAll(log, newID(t)); !errors.Is(err, ErrWrongIdentity) {
		t.Errorf("wrong identity: %v", err)
	}
}

// TestEveryBitFlip flips each bit of a small log in turn: none may pass.
func TestEveryBitFlip(t *testing.T) {
	id := newID(t)
	log := writeLog(t, id, "r", "a")
	for i := range log {
		for bit := 0; bit < 8; bit++ {
			bad := append([]byte(nil), log...)
			bad[i] ^= 1 << bit
			recs, err := readAll(bad, id)
			if err == nil {
				t.Fatalf("flipping bit %d of byte %d (%q) went unnoticed: %d records", bit, i, log[i], len(recs))
			}
		}
	}
}

// TestBucketsHideLengths: records of different lengths within a bucket seal
// to lines of the same length.
func TestBucketsHideLengths(t *testing.T) {
	id := newID(t)
	size := func(msg string) int {
		ls := lines(writeLog(t, id, "r", msg))
		return len(ls[1])
	}
	base := size("")
	for _, n := range []int{1, 17, 100, 256 - recordOverhead} {
		if got := size(strings.Repeat("s", n)); got != base {
			t.Errorf("a %d-byte message sealed to %d bytes, an empty one to %d", n, got, base)
		}
	}
	if size(strings.Repeat("s", 256-recordOverhead+1)) == base {
		t.Error("a message past the first bucket did not move to the next")
	}
	for _, b := range buckets {
		if got := bucketFor(b - 1); got != b {
			t.Errorf("bucketFor(%d) = %d", b-1, got)
		}
	}
}

func TestDropsAreCounted(t *testing.T) {
	id := newID(t)
	var buf bytes.Buffer
	slow := &slowWriter{w: &buf, delay: 2 * time.Millisecond}
	w, err := NewWriter(slow, id.Recipient(), Header{Ref: "r"}, 4)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		w.Log(LevelInfo, SourceStdout, []byte(fmt.Sprint(i)))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(bytes.NewReader(buf.Bytes()), id)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	var sawDropNote bool
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if rec.Source == SourceRuntime && strings.Contains(string(rec.Message), "records dropped") {
			sawDropNote = true
		} else {
			n++
		}
	}
	if r.Dropped == 0 || uint64(n)+r.Dropped != 200 || !sawDropNote {
		t.Errorf("kept %d, dropped %d (note %v): want 200 in all, some dropped and said so", n, r.Dropped, sawDropNote)
	}
}

type slowWriter struct {
	w     io.Writer
	delay time.Duration
}

func (s *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(s.delay)
	return s.w.Write(p)
}

func TestKeys(t *testing.T) {
	id := newID(t)
	file, err := id.Marshal(time.Unix(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseIdentity(file)
	if err != nil || back.Recipient().String() != id.Recipient().String() {
		t.Fatalf("identity round trip: %v", err)
	}
	r, err := ParseRecipient(id.Recipient().String())
	if err != nil || r.String() != id.Recipient().String() {
		t.Fatalf("recipient round trip: %v", err)
	}
	for _, bad := range []string{"", "alog1", "alog1zz", "age1abc", "alog1" + strings.Repeat("0", 62)} {
		if _, err := ParseRecipient(bad); err == nil {
			t.Errorf("ParseRecipient(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"", "# only comments\n", "AMPOULE-LOG-IDENTITY-1xyz", "secret"} {
		if _, err := ParseIdentity([]byte(bad)); err == nil {
			t.Errorf("ParseIdentity(%q) accepted", bad)
		}
	}
}

// FuzzReader: any bytes either decrypt as a whole log or fail with one of
// the reader's errors; never a panic. Seeds: testdata/fuzz/FuzzReader.
func FuzzReader(f *testing.F) {
	id, err := ParseIdentity([]byte(fuzzIdentity))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(writeLog(f, id, "r", "hello", "world"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := readAll(data, id)
		if err != nil && !errors.Is(err, ErrFormat) && !errors.Is(err, ErrTampered) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrWrongIdentity) {
			t.Fatalf("unclassified error: %v", err)
		}
	})
}

// fuzzIdentity is a fixed, test-only identity so that seeds stay valid.
const fuzzIdentity = "AMPOULE-LOG-IDENTITY-1" + "0101010101010101010101010101010101010101010101010101010101010101"
