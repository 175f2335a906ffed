package logging

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/ampoule-run/ampoule/internal/testwasm"
)

var update = flag.Bool("update", false, "rewrite logging/testdata/known-answer.log and the FuzzReader seeds")

// fixedRuntimeKey is a test-only runtime key, so that the known-answer log
// stays the same.
func fixedRuntimeKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	raw, _ := hex.DecodeString("0b1d2e3f405162738495a6b7c8d9eafb0c1d2e3f405162738495a6b7c8d9eafb")
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), raw)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// knownAnswer seals a fixed log: the fixed identity, runtime key, header,
// record times and, through cryptotest.SetGlobalRandom, the HPKE ephemeral
// key and the signatures' randomness.
func knownAnswer(t *testing.T) []byte {
	t.Helper()
	cryptotest.SetGlobalRandom(t, 1)
	id, err := ParseIdentity([]byte(fuzzIdentity))
	if err != nil {
		t.Fatal(err)
	}
	id2, err := ParseIdentity([]byte(fuzzIdentity2))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	h := Header{Envelope: testEnvelope, Ref: "known-answer", Measurement: strings.Repeat("ab", 48), Profile: "staging", Started: time.Unix(1700000000, 0).UTC()}
	w, err := NewWriterTo(&buf, []*Recipient{id.Recipient(), id2.Recipient()}, h, fixedRuntimeKey(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	tick := time.Unix(1700000001, 0).UTC()
	w.mu.Lock()
	w.now = func() time.Time { tick = tick.Add(time.Millisecond); return tick }
	w.mu.Unlock()
	for _, r := range knownRecords {
		w.Log(LevelInfo, r.src, []byte(r.msg))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var knownRecords = []struct {
	src Source
	msg string
}{
	{SourceStdout, "hello from the known-answer log\n"},
	{SourceStdout, "hello from the known-answer log\n"}, // the same again: a new nonce seals it
	{SourceStderr, strings.Repeat("e", 300)},
	{SourceRuntime, "run ended"},
}

const knownAnswerFile = "testdata/known-answer-v3.log"

// knownAnswerV2File is a version 2 log of knownRecords, to fuzzIdentity
// alone, as this package wrote it before version 3: it is kept to show
// that such a log still opens (TestVersion2LogStillOpens).
const knownAnswerV2File = "testdata/known-answer-v2.log"

// TestKnownAnswerLog: a committed log, made by this test with fixed inputs
// to two recipients, opens to its known records with either identity, and sealing the same inputs again gives the
// same bytes: the nonces, keys, AADs and layout cannot change unnoticed
// (a nonce that ignored the sequence number, say, still round-trips but
// changes these bytes). Run with -update to rewrite it after a deliberate
// format change.
func TestKnownAnswerLog(t *testing.T) {
	log := knownAnswer(t)
	if *update {
		writeSeeds(t, log)
		if err := os.WriteFile(knownAnswerFile, log, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(knownAnswerFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(log, want) {
		t.Fatalf("sealing the known inputs gave other bytes than %s (%d bytes, want %d)", knownAnswerFile, len(log), len(want))
	}
	id2, _ := ParseIdentity([]byte(fuzzIdentity2))
	if _, err := readAll(want, id2); err != nil {
		t.Fatalf("the second recipient: %v", err)
	}
	checkKnownRecords(t, want)
}

// checkKnownRecords checks that log opens with fuzzIdentity to
// knownRecords, under the known header.
func checkKnownRecords(t *testing.T, want []byte) {
	t.Helper()
	id, _ := ParseIdentity([]byte(fuzzIdentity))
	recs, err := readAll(want, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(knownRecords) {
		t.Fatalf("%d records, want %d", len(recs), len(knownRecords))
	}
	for i, r := range recs {
		if r.Source != knownRecords[i].src || string(r.Message) != knownRecords[i].msg || r.Seq != uint64(i) ||
			!r.Time.Equal(time.Unix(1700000001, 0).Add(time.Duration(i+1)*time.Millisecond)) {
			t.Errorf("record %d: %v %q at %v", i, r.Source, r.Message, r.Time)
		}
	}
	rd, _ := NewReader(bytes.NewReader(want), id)
	pub, _ := fixedRuntimeKey(t).PublicKey.Bytes()
	if h := rd.Header(); h.Ref != "known-answer" || !bytes.Equal(h.RuntimeKey, pub) || !bytes.Equal(h.Envelope, testEnvelope) {
		t.Errorf("header: %+v", h)
	}
}

// writeSeeds rewrites the FuzzReader seeds from a log of this version.
func writeSeeds(t *testing.T, log []byte) {
	ls := lines(log)
	dir := "testdata/fuzz/FuzzReader"
	for name, data := range map[string][]byte{
		"whole":       log,
		"header-only": ls[0],
		"truncated":   join(ls[:len(ls)-1]),
		"long":        join(append(append([][]byte{}, ls[:2]...), ls[3:]...)),
		"empty-run":   join([][]byte{ls[0], ls[len(ls)-1]}),
	} {
		seed := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(seed), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// FuzzParseHeader's: this header line, to two recipients, and version
	// 2's, to one.
	v2, err := os.ReadFile(knownAnswerV2File)
	if err != nil {
		t.Fatal(err)
	}
	for name, line := range map[string][]byte{"v3-two-recipients": ls[0], "v2-one-recipient": lines(v2)[0]} {
		seed := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", bytes.TrimSuffix(line, []byte("\n")))
		if err := os.WriteFile(filepath.Join("testdata/fuzz/FuzzParseHeader", name), []byte(seed), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestEqualMessagesSealDifferently: the same message, at the same time, in
// two records seals under two nonces, so the two ciphertexts differ in the
// message's bytes, not only in the sequence number's.
func TestEqualMessagesSealDifferently(t *testing.T) {
	id := newID(t)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, id.Recipient(), Header{Envelope: testEnvelope, Ref: "r"}, testKey(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1, 0)
	w.mu.Lock()
	w.now = func() time.Time { return at }
	w.mu.Unlock()
	msg := []byte(strings.Repeat("same", 40))
	w.Log(LevelInfo, SourceStdout, msg)
	w.Log(LevelInfo, SourceStdout, msg)
	w.Close()
	ls := lines(buf.Bytes())
	a, b := ls[1][4:], ls[2][4:]
	if len(a) != len(b) {
		t.Fatalf("lengths %d and %d", len(a), len(b))
	}
	// Bytes 0 and 9..: the kind, time, level, source, length and message,
	// equal in both plaintexts.
	same := 0
	for i := 9; i < len(a)-16; i++ {
		if a[i] == b[i] {
			same++
		}
	}
	if same > (len(a)-25)/8 {
		t.Errorf("%d of %d equal plaintext bytes sealed to equal ciphertext bytes: the nonce does not change per record", same, len(a)-25)
	}
}

// TestOnlyTheRuntimeKeyWritesALog: a header signed by another key than the
// one it names, a header whose key was swapped for another's, a version 1
// log and an end record signed by another key are refused.
func TestOnlyTheRuntimeKeyWritesALog(t *testing.T) {
	id := newID(t)
	genuine := writeLog(t, id, "run-a", "one")
	other := writeLog(t, id, "run-b", "one")
	g, o := lines(genuine), lines(other)

	// Another log's signature on this header. A header line is
	// "ampoule-log v3 JSON SIGNATURE".
	gp := strings.Split(strings.TrimSuffix(string(g[0]), "\n"), " ")
	op := strings.Split(strings.TrimSuffix(string(o[0]), "\n"), " ")
	swapped := Magic + gp[2] + " " + op[3] + "\n"
	if _, err := readAll(append([]byte(swapped), join(g[1:])...), id); !errors.Is(err, ErrUnsigned) {
		t.Errorf("another header's signature: %v", err)
	}

	// The header re-signed by a key that is not the one it names.
	js, _ := b64.DecodeString(gp[2])
	sig, _ := ecdsa.SignASN1(rand.Reader, testKey(t), headerDigest(js))
	resigned := Magic + gp[2] + " " + base64.StdEncoding.EncodeToString(sig) + "\n"
	if _, err := readAll(append([]byte(resigned), join(g[1:])...), id); !errors.Is(err, ErrUnsigned) {
		t.Errorf("a header signed by another key: %v", err)
	}

	// No signature at all, or a version 1 header line.
	if _, err := readAll(append([]byte(Magic+gp[2]+"\n"), join(g[1:])...), id); !errors.Is(err, ErrFormat) {
		t.Errorf("an unsigned header: %v", err)
	}
	v1 := "ampoule-log v1 " + gp[2] + "\n"
	if _, err := readAll(append([]byte(v1), join(g[1:])...), id); !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "version 1") {
		t.Errorf("a version 1 log: %v", err)
	}

	// An end record signed by another key than the header's.
	line, s, err := newSealer([]*Recipient{id.Recipient()}, Header{Envelope: testEnvelope, Ref: "r"}, testKey(t))
	if err != nil {
		t.Fatal(err)
	}
	s.key = testKey(t)
	log := append(line, '\n')
	log = s.seal(log, layoutRecord(nil, time.Now(), LevelInfo, SourceStdout, []byte("x")))
	if log, err = s.sealEnd(log, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(log, id); !errors.Is(err, ErrTampered) || !strings.Contains(err.Error(), "signed") {
		t.Errorf("an end record signed by another key: %v", err)
	}

	// A writer refuses to start without a runtime key or an envelope.
	if _, err := NewWriter(io.Discard, id.Recipient(), Header{Envelope: testEnvelope}, nil, Options{}); err == nil {
		t.Error("a writer without a runtime key")
	}
	if _, err := NewWriter(io.Discard, id.Recipient(), Header{}, testKey(t), Options{}); err == nil {
		t.Error("a writer without an envelope")
	}
}

// readStreams decrypts a log and returns what each stream carried and the
// number of records.
func readStreams(t *testing.T, log []byte, id *Identity) (map[Source][]byte, int) {
	t.Helper()
	recs, err := readAll(log, id)
	if err != nil {
		t.Fatal(err)
	}
	out := map[Source][]byte{}
	for _, r := range recs {
		out[r.Source] = append(out[r.Source], r.Message...)
	}
	return out, len(recs)
}

// TestByteAtATimeIsCoalesced: 1 MiB written one byte at a time seals to a
// log of at most twice the bytes plus the allowance, and reads back the
// same, byte for byte.
func TestByteAtATimeIsCoalesced(t *testing.T) {
	id := newID(t)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, id.Recipient(), Header{Envelope: testEnvelope, Ref: "r"}, testKey(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	head := buf.Len()
	want := make([]byte, 1<<20)
	for i := range want {
		want[i] = byte(i*7 + i>>8)
	}
	s := w.Stream(SourceStdout, LevelInfo)
	for i := range want {
		s.Write(want[i : i+1])
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, n := readStreams(t, buf.Bytes(), id)
	if !bytes.Equal(got[SourceStdout], want) {
		t.Fatalf("stdout came back as %d bytes, not the %d written", len(got[SourceStdout]), len(want))
	}
	bound := 2*len(want) + WasteAllowance + StreamReserve + 2*StreamReserve // and the end record
	if size := buf.Len() - head; size > bound {
		t.Errorf("1 MiB written a byte at a time sealed to %d bytes in %d records, more than %d", size, n, bound)
	}
	t.Logf("1 MiB a byte at a time: %d bytes of records (%.3f×), %d records", buf.Len()-head, float64(buf.Len()-head)/float64(len(want)), n)
}

// TestTrickleIsBounded: a stream written a byte now and then, each write
// sealed by the delay until the allowance is spent, still stays within
// twice its bytes plus the allowance, and loses nothing.
func TestTrickleIsBounded(t *testing.T) {
	id := newID(t)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, id.Recipient(), Header{Envelope: testEnvelope, Ref: "r"}, testKey(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	out, errs := w.Stream(SourceStdout, LevelInfo), w.Stream(SourceStderr, LevelInfo)
	var wantOut, wantErr []byte
	// Each record of one byte costs StreamReserve: enough of them to
	// spend the allowance and more.
	writes := 2*WasteAllowance/StreamReserve + 50
	for i := 0; i < writes; i++ {
		b := []byte{byte('a' + i%26)}
		if i%3 == 0 {
			errs.Write(b)
			wantErr = append(wantErr, b...)
		} else {
			out.Write(b)
			wantOut = append(wantOut, b...)
		}
		if i%4 == 0 {
			time.Sleep(CoalesceDelay + time.Millisecond)
		}
	}
	w.mu.Lock()
	sealed, in := w.streamSealed, w.sealedIn
	w.mu.Unlock()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if sealed > 2*in+WasteAllowance {
		t.Errorf("the streams' records cost %d bytes for %d bytes, more than twice plus %d", sealed, in, WasteAllowance)
	}
	if sealed < WasteAllowance/2 {
		t.Errorf("the records cost only %d bytes: the delay never sealed a small record", sealed)
	}
	got, _ := readStreams(t, buf.Bytes(), id)
	if !bytes.Equal(got[SourceStdout], wantOut) || !bytes.Equal(got[SourceStderr], wantErr) {
		t.Errorf("the streams came back as %q and %q", got[SourceStdout], got[SourceStderr])
	}
}

// TestCoalescedWritesAreTimely: a small write reaches the sink within a few
// delays, without Close.
func TestCoalescedWritesAreTimely(t *testing.T) {
	id := newID(t)
	var mu testwasm.SyncBuffer
	w, err := NewWriter(&mu, id.Recipient(), Header{Envelope: testEnvelope, Ref: "r"}, testKey(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	head := mu.Len()
	w.Stream(SourceStdout, LevelInfo).Write([]byte("a line\n"))
	deadline := time.Now().Add(5 * time.Second)
	for mu.Len() == head && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if mu.Len() == head {
		t.Error("a small write was not sealed and sent within 5 s")
	}
	w.Close()
}

// BenchmarkRunLogFixedCost is what every run's log costs whatever it
// carries: the HPKE context, the header's signature, the end record's
// signature (and, for a reader, both checks).
func BenchmarkRunLogFixedCost(b *testing.B) {
	id, key := newID(b), testKey(b)
	for b.Loop() {
		w, err := NewWriter(io.Discard, id.Recipient(), Header{Envelope: testEnvelope, Ref: "b"}, key, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkByteWrites seals 1 MiB written one byte at a time, as a guest
// printing a character at a time would.
func BenchmarkByteWrites(b *testing.B) {
	id, key := newID(b), testKey(b)
	b.SetBytes(1 << 20)
	one := []byte{'x'}
	for b.Loop() {
		w, err := NewWriter(io.Discard, id.Recipient(), Header{Envelope: testEnvelope, Ref: "b"}, key, Options{})
		if err != nil {
			b.Fatal(err)
		}
		s := w.Stream(SourceStdout, LevelInfo)
		for range 1 << 20 {
			s.Write(one)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRecordsKeepTheStreamsOrder: a runtime record logged after a stream's
// small write comes after it in the log, although the write was gathered.
func TestRecordsKeepTheStreamsOrder(t *testing.T) {
	id := newID(t)
	var buf bytes.Buffer
	w, err := NewWriter(&buf, id.Recipient(), Header{Envelope: testEnvelope, Ref: "r"}, testKey(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.Stream(SourceStdout, LevelInfo).Write([]byte("the last line\n"))
	w.Log(LevelInfo, SourceRuntime, []byte("run ended"))
	w.Close()
	recs, err := readAll(buf.Bytes(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Source != SourceStdout || recs[1].Source != SourceRuntime {
		t.Errorf("records: %v", recs)
	}
}
