package logging

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"
	"time"
)

// writeLogTo writes msgs to a log whose key is wrapped to each of ids.
func writeLogTo(t testing.TB, ids []*Identity, msgs ...string) []byte {
	t.Helper()
	var rs []*Recipient
	for _, id := range ids {
		rs = append(rs, id.Recipient())
	}
	var buf bytes.Buffer
	w, err := NewWriterTo(&buf, rs, Header{Envelope: testEnvelope, Ref: "team", Measurement: "m", Profile: "staging", Started: time.Unix(0, 0).UTC()}, testKey(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		w.Log(LevelInfo, SourceStdout, []byte(m))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestEveryRecipientOpensTheLog: a log to a team of two opens, whole, with
// either one's identity, and a third identity is refused before any record.
func TestEveryRecipientOpensTheLog(t *testing.T) {
	a, b, c := newID(t), newID(t), newID(t)
	log := writeLogTo(t, []*Identity{a, b}, "for the team", "and more")
	for name, id := range map[string]*Identity{"the first": a, "the second": b} {
		recs, err := readAll(log, id)
		if err != nil {
			t.Fatalf("%s recipient: %v", name, err)
		}
		if len(recs) != 2 || string(recs[0].Message) != "for the team" || string(recs[1].Message) != "and more" {
			t.Errorf("%s recipient read %d records", name, len(recs))
		}
	}
	if _, err := readAll(log, c); !errors.Is(err, ErrWrongIdentity) {
		t.Errorf("a third identity: %v; want ErrWrongIdentity", err)
	}
	if n := len(lineHeader(t, log).Recipients); n != 2 {
		t.Errorf("the header carries %d recipient blocks, want 2", n)
	}
}

// lineHeader decodes a log's header, unchecked.
func lineHeader(t *testing.T, log []byte) Header {
	t.Helper()
	h, err := parseHeaderLine(lines(log)[0][:len(lines(log)[0])-1])
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// A host that reorders or removes a recipient block in a written log's
// header breaks the header's signature.
func TestRecipientBlocksEditedByTheHostAreRefused(t *testing.T) {
	a, b := newID(t), newID(t)
	log := writeLogTo(t, []*Identity{a, b}, "x")
	line, rest, _ := bytes.Cut(log, []byte("\n"))
	jsB64, sigB64, _ := bytes.Cut(line[len(Magic):], []byte(" "))
	js, err := base64.StdEncoding.DecodeString(string(jsB64))
	if err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func([]any) []any{
		"reordered":         func(bs []any) []any { return []any{bs[1], bs[0]} },
		"the first removed": func(bs []any) []any { return bs[1:] },
		"the last removed":  func(bs []any) []any { return bs[:1] },
	} {
		var fields map[string]any
		if err := json.Unmarshal(js, &fields); err != nil {
			t.Fatal(err)
		}
		fields["recipients"] = edit(fields["recipients"].([]any))
		changed, _ := json.Marshal(fields)
		forged := append([]byte(Magic+base64.StdEncoding.EncodeToString(changed)+" "+string(sigB64)+"\n"), rest...)
		for _, id := range []*Identity{a, b} {
			if _, err := readAll(forged, id); !errors.Is(err, ErrUnsigned) {
				t.Errorf("%s: %v; want ErrUnsigned", name, err)
			}
		}
	}
}

// Even a header signed after its blocks were reordered, removed or swapped
// opens to no one: the record key is derived from every block in order, so
// the signature is not the only thing that holds the list together.
func TestRecipientBlocksBoundIntoTheKey(t *testing.T) {
	a, b, other := newID(t), newID(t), newID(t)
	key := testKey(t)
	team := []*Identity{a, b}
	if _, err := NewReader(bytes.NewReader(signedHeaderTo(t, team, key, func(map[string]any) {})), a); err != nil {
		t.Fatalf("the unchanged header: %v", err)
	}
	swapped := signedHeaderTo(t, []*Identity{other, other}, key, func(map[string]any) {})
	var otherFields map[string]any
	js, _ := base64.StdEncoding.DecodeString(string(bytes.Fields(swapped)[2]))
	if err := json.Unmarshal(js, &otherFields); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func([]any) []any{
		"reordered":                  func(bs []any) []any { return []any{bs[1], bs[0]} },
		"the other removed":          func(bs []any) []any { return bs[:1] },
		"the other's swapped":        func(bs []any) []any { return []any{bs[0], otherFields["recipients"].([]any)[1]} },
		"the first moved to the end": func(bs []any) []any { return []any{otherFields["recipients"].([]any)[0], bs[0]} },
	} {
		line := signedHeaderTo(t, team, key, func(f map[string]any) { f["recipients"] = edit(f["recipients"].([]any)) })
		if _, err := NewReader(bytes.NewReader(line), a); !errors.Is(err, ErrWrongIdentity) {
			t.Errorf("%s, signed: %v; want ErrWrongIdentity", name, err)
		}
	}
}

// A writer takes 1 to MaxRecipients distinct recipients.
func TestWriterRecipientBounds(t *testing.T) {
	id := newID(t)
	var many []*Recipient
	for i := 0; i <= MaxRecipients; i++ {
		many = append(many, newID(t).Recipient())
	}
	for name, rs := range map[string][]*Recipient{
		"none":      nil,
		"too many":  many,
		"twice":     {id.Recipient(), id.Recipient()},
		"a nil one": {id.Recipient(), nil},
	} {
		if _, err := NewWriterTo(io.Discard, rs, Header{Envelope: testEnvelope}, testKey(t), Options{}); err == nil {
			t.Errorf("%s: a writer started", name)
		}
	}
	if _, err := NewWriterTo(io.Discard, many[:MaxRecipients], Header{Envelope: testEnvelope}, testKey(t), Options{}); err != nil {
		t.Errorf("MaxRecipients recipients: %v", err)
	}
}

// TestVersion2LogStillOpens: a log written as version 2 (one recipient, the
// record key exported from its HPKE context) opens to its records, and
// another identity is still refused.
func TestVersion2LogStillOpens(t *testing.T) {
	v2, err := os.ReadFile(knownAnswerV2File)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(v2, []byte(magicV2)) {
		t.Fatalf("%s is not a version 2 log", knownAnswerV2File)
	}
	checkKnownRecords(t, v2)
	if _, err := readAll(v2, newID(t)); !errors.Is(err, ErrWrongIdentity) {
		t.Errorf("another identity: %v; want ErrWrongIdentity", err)
	}
}

// FuzzParseHeader: any header line is either accepted, and then opens
// with the fixed identity or is refused as ErrWrongIdentity, or refused
// with one of the reader's errors; never a panic. Seeds:
// testdata/fuzz/FuzzParseHeader (a version 3 header to two recipients, a
// version 2 header to one).
func FuzzParseHeader(f *testing.F) {
	id, err := ParseIdentity([]byte(fuzzIdentity))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		h, err := parseHeaderLine(line)
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrUnsigned) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if h.Version == Version && (len(h.Recipients) == 0 || len(h.Recipients) > MaxRecipients) {
			t.Fatalf("accepted %d recipient blocks", len(h.Recipients))
		}
		if _, _, _, err := openKeys(h, id); err != nil && !errors.Is(err, ErrWrongIdentity) && !errors.Is(err, ErrFormat) {
			t.Fatalf("unclassified error: %v", err)
		}
	})
}

// BenchmarkHeaderRecipients opens a log (wraps its key, signs its header)
// for one recipient and for MaxRecipients, the cost a team adds to a run.
func BenchmarkHeaderRecipients(b *testing.B) {
	key := testKey(b)
	for _, n := range []int{1, MaxRecipients} {
		var rs []*Recipient
		for i := 0; i < n; i++ {
			rs = append(rs, newID(b).Recipient())
		}
		b.Run(fmt.Sprintf("recipients=%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if _, _, err := newSealer(rs, Header{Envelope: testEnvelope}, key); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkOpenRecipients opens a log's header as the last of
// MaxRecipients recipients: a reader tries every block before its own.
func BenchmarkOpenRecipients(b *testing.B) {
	var ids []*Identity
	for i := 0; i < MaxRecipients; i++ {
		ids = append(ids, newID(b))
	}
	log := writeLogTo(b, ids, "x")
	last := ids[len(ids)-1]
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := NewReader(bytes.NewReader(log), last); err != nil {
			b.Fatal(err)
		}
	}
}
