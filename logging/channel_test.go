package logging

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testEnvelope stands for a run's evidence envelope, which this package
// carries without judging (launch logs decrypt judges it).
var testEnvelope = []byte(`{"kind":"test"}`)

// testKey makes a runtime key, as a run makes one inside its TEE.
func testKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

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
	w, err := NewWriter(&buf, id.Recipient(), Header{Envelope: testEnvelope, Ref: ref, Measurement: "m", Profile: "staging", Started: time.Unix(0, 0).UTC()}, testKey(t), Options{})
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

// lines splits a log into its header line and its frames.
func lines(log []byte) [][]byte {
	i := bytes.IndexByte(log, '\n')
	out := [][]byte{log[:i+1]}
	rest := log[i+1:]
	for len(rest) >= 4 {
		n := int(binary.BigEndian.Uint32(rest[:4]))
		if 4+n > len(rest) {
			out = append(out, rest)
			break
		}
		out = append(out, rest[:4+n])
		rest = rest[4+n:]
	}
	return out
}

func join(ls [][]byte) []byte {
	var b []byte
	for _, l := range ls {
		b = append(b, l...)
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
		{"trailing frame", join(append(cp(), ls[2])), ErrTampered},
		{"trailing byte", append(join(cp()), 0), ErrTampered},
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
	for _, n := range []int{1, 17, 100, 256} {
		if got := size(strings.Repeat("s", n)); got != base {
			t.Errorf("a %d-byte message sealed to %d bytes, an empty one to %d", n, got, base)
		}
	}
	if size(strings.Repeat("s", 257)) == base {
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
	slow := &slowWriter{w: &buf, delay: 20 * time.Millisecond}
	w, err := NewWriter(slow, id.Recipient(), Header{Envelope: testEnvelope, Ref: "r"}, testKey(t), Options{Queue: 1, DropAfter: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Records of 4 KiB fill a 64 KiB batch every 16; the sink takes 20 ms
	// a batch, far past DropAfter.
	msg := make([]byte, 4000)
	for i := 0; i < 200; i++ {
		copy(msg, fmt.Sprint(i))
		w.Log(LevelInfo, SourceStdout, msg)
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
	// The text form, and inside a CRI log file (TestTextForm).
	f.Add(textLog(f, id, "hello", "world"))
	f.Add(cri(textLog(f, id, "hello", "world"), 50))
	f.Fuzz(func(t *testing.T, data []byte) {
		_, err := readAll(data, id)
		if err != nil && !errors.Is(err, ErrFormat) && !errors.Is(err, ErrTampered) && !errors.Is(err, ErrTruncated) && !errors.Is(err, ErrWrongIdentity) && !errors.Is(err, ErrUnsigned) {
			t.Fatalf("unclassified error: %v", err)
		}
	})
}

// fuzzIdentity is a fixed, test-only identity so that seeds stay valid.
const fuzzIdentity = "AMPOULE-LOG-IDENTITY-1" + "0101010101010101010101010101010101010101010101010101010101010101"

// fuzzIdentity2 is the known-answer log's second recipient.
const fuzzIdentity2 = "AMPOULE-LOG-IDENTITY-1" + "0202020202020202020202020202020202020202020202020202020202020202"

// TestNoDropsWithoutAStuckSink: a producer faster than sealing is held back,
// not dropped, when the sink keeps up.
func TestNoDropsWithoutAStuckSink(t *testing.T) {
	id := newID(t)
	// A file keeps up; a bytes.Buffer would not (growing it past 16 MiB
	// stalls a write for hundreds of milliseconds on this VM).
	f, err := os.Create(filepath.Join(t.TempDir(), "log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := NewWriter(f, id.Recipient(), Header{Envelope: testEnvelope, Ref: "r"}, testKey(t), Options{Queue: 16})
	if err != nil {
		t.Fatal(err)
	}
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 256) // 4 KiB
	const n = 4096                                         // 16 MiB
	for i := 0; i < n; i++ {
		w.Stream(SourceStdout, LevelInfo).Write(chunk)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	f.Seek(0, io.SeekStart)
	r, _ := NewReader(f, id)
	var got int
	for {
		rec, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got += len(rec.Message)
	}
	if r.Dropped != 0 || got != n*len(chunk) {
		t.Errorf("dropped %d, got %d of %d bytes", r.Dropped, got, n*len(chunk))
	}
}

// BenchmarkChannel seals 64 MiB written in 4 KiB writes, as a workload's
// stdout would arrive, to a sink that discards.
func BenchmarkChannel(b *testing.B) {
	id := newID(b)
	chunk := make([]byte, 4096)
	b.SetBytes(64 << 20)
	for i := 0; i < b.N; i++ {
		w, err := NewWriter(io.Discard, id.Recipient(), Header{Envelope: testEnvelope, Ref: "b"}, testKey(b), Options{})
		if err != nil {
			b.Fatal(err)
		}
		s := w.Stream(SourceStdout, LevelInfo)
		for j := 0; j < (64<<20)/len(chunk); j++ {
			s.Write(chunk)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
