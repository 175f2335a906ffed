package logging

import (
	"bytes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"testing"
	"time"
)

// Whoever holds a log's identity (its tenant) can open every record and
// seal it again under the same key, nonce and AAD; only the runtime key's
// signatures stand between that and a changed log. These tests reseal
// records as such a holder would and check the reader refuses them, each
// for the one check that catches it.

// sealedLog is a log taken apart with its identity: the header line and
// every frame's ciphertext, with the key that opens and reseals them.
type sealedLog struct {
	line   []byte
	aead   cipher.AEAD
	base   [12]byte
	hash   [32]byte
	frames [][]byte
}

func openLog(t *testing.T, log []byte, id *Identity) *sealedLog {
	t.Helper()
	line, rest, ok := bytes.Cut(log, []byte("\n"))
	if !ok {
		t.Fatal("no header line")
	}
	h, err := parseHeaderLine(line)
	if err != nil {
		t.Fatal(err)
	}
	g, base, _, err := openKeys(h, id)
	if err != nil {
		t.Fatal(err)
	}
	s := &sealedLog{line: line, aead: g, base: base, hash: sha256.Sum256(line)}
	for len(rest) > 0 {
		n := binary.BigEndian.Uint32(rest[:4])
		s.frames = append(s.frames, rest[4:4+n])
		rest = rest[4+n:]
	}
	return s
}

// reseal opens frame seq, lets change alter its plaintext and seals it
// again in its place.
func (s *sealedLog) reseal(t *testing.T, seq int, change func(plain []byte)) {
	t.Helper()
	nonce, aad := nonceFor(s.base, uint64(seq)), aadFor(s.hash, uint64(seq))
	plain, err := s.aead.Open(nil, nonce[:], s.frames[seq], aad[:])
	if err != nil {
		t.Fatal(err)
	}
	change(plain)
	s.frames[seq] = s.aead.Seal(nil, nonce[:], plain, aad[:])
}

func (s *sealedLog) bytes() []byte {
	out := append(append([]byte(nil), s.line...), '\n')
	for _, f := range s.frames {
		out = binary.BigEndian.AppendUint32(out, uint32(len(f)))
		out = append(out, f...)
	}
	return out
}

// readToEnd reads every record and returns the reader's final error (nil
// at a verified end) and the drops the end record reported.
func readToEnd(log []byte, id *Identity) (dropped uint64, err error) {
	r, err := NewReader(bytes.NewReader(log), id)
	if err != nil {
		return 0, err
	}
	for {
		if _, err := r.Next(); err == io.EOF {
			return r.Dropped, nil
		} else if err != nil {
			return 0, err
		}
	}
}

// The count of dropped records is signed: a tenant cannot make a run look
// as if it lost nothing (or lost records it did not).
func TestEndRecordDropsAreSigned(t *testing.T) {
	id := newID(t)
	s := openLog(t, writeLog(t, id, "ref", "a", "b"), id)
	if _, err := readToEnd(s.bytes(), id); err != nil {
		t.Fatalf("the untouched log: %v", err)
	}
	end := len(s.frames) - 1
	s.reseal(t, end, func(p []byte) {
		if p[0] != kindEnd {
			t.Fatalf("the last frame is of kind %d", p[0])
		}
		binary.BigEndian.PutUint64(p[9:17], 7)
	})
	dropped, err := readToEnd(s.bytes(), id)
	if !errors.Is(err, ErrTampered) {
		t.Fatalf("an end record claiming 7 drops, resealed: dropped %d, err %v; want ErrTampered", dropped, err)
	}
}

// A record whose length field claims more than it carries is refused with
// ErrTampered, never read past its end (a panic).
func TestRecordLengthBeyondItsBucketIsRefused(t *testing.T) {
	id := newID(t)
	for _, claim := range []uint32{uint32(bucketFor(1)) + 1, 1 << 31, ^uint32(0)} {
		s := openLog(t, writeLog(t, id, "ref", "a"), id)
		s.reseal(t, 0, func(p []byte) { binary.BigEndian.PutUint32(p[19:23], claim) })
		var err error
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("a record claiming %d bytes: panic %v", claim, r)
				}
			}()
			_, err = readToEnd(s.bytes(), id)
		}()
		if !errors.Is(err, ErrTampered) {
			t.Errorf("a record claiming %d bytes: %v; want ErrTampered", claim, err)
		}
	}
}

// signedHeader makes a header line for id as a writer would, signed by
// key, after edit changed its JSON fields: everything else about it (the
// wrapped log key, the key check, the signature) is valid.
func signedHeader(t *testing.T, id *Identity, key *ecdsa.PrivateKey, edit func(map[string]any)) []byte {
	t.Helper()
	return signedHeaderTo(t, []*Identity{id}, key, edit)
}

// signedHeaderTo is signedHeader for a log key wrapped to each of ids.
func signedHeaderTo(t *testing.T, ids []*Identity, key *ecdsa.PrivateKey, edit func(map[string]any)) []byte {
	t.Helper()
	logKey := make([]byte, 32)
	rand.Read(logKey)
	var blocks [][]byte
	for _, id := range ids {
		b, err := hpke.Seal(id.Recipient().pk, kdf(), hpke.AES256GCM(), wrapInfo, logKey)
		if err != nil {
			t.Fatal(err)
		}
		blocks = append(blocks, b)
	}
	_, _, check, err := keys(logKeyExport(logKey, blocks))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := key.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(Header{Version: Version, Suite: Suite, Recipients: blocks, KeyCheck: check, RuntimeKey: pub,
		Envelope: testEnvelope, Ref: "ref", Measurement: "m", Profile: "staging", Started: time.Unix(0, 0).UTC()})
	if err != nil {
		t.Fatal(err)
	}
	var fields map[string]any
	if err := json.Unmarshal(js, &fields); err != nil {
		t.Fatal(err)
	}
	edit(fields)
	if js, err = json.Marshal(fields); err != nil {
		t.Fatal(err)
	}
	sig, err := ecdsa.SignASN1(rand.Reader, key, headerDigest(js))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(Magic + base64.StdEncoding.EncodeToString(js) + " " + base64.StdEncoding.EncodeToString(sig) + "\n")
}

// A header is read only as the one version and suite this package writes,
// with an envelope and no field it does not know, even when it is signed.
func TestHeaderIsReadOnlyAsWritten(t *testing.T) {
	id, key := newID(t), testKey(t)
	if _, err := NewReader(bytes.NewReader(signedHeader(t, id, key, func(map[string]any) {})), id); err != nil {
		t.Fatalf("the unchanged header: %v", err)
	}
	for name, edit := range map[string]func(map[string]any){
		"version 4": func(f map[string]any) { f["v"] = Version + 1 },
		"version 2": func(f map[string]any) { f["v"] = 2 },
		"an enc beside the blocks": func(f map[string]any) {
			f["enc"] = base64.StdEncoding.EncodeToString(make([]byte, 32))
		},
		"no recipient blocks":     func(f map[string]any) { delete(f, "recipients") },
		"an empty list of blocks": func(f map[string]any) { f["recipients"] = []any{} },
		"a short block": func(f map[string]any) {
			f["recipients"] = []any{base64.StdEncoding.EncodeToString(make([]byte, wrappedLen-1))}
		},
		"a block given twice": func(f map[string]any) {
			b := f["recipients"].([]any)[0]
			f["recipients"] = []any{b, b}
		},
		"more blocks than MaxRecipients": func(f map[string]any) {
			var bs []any
			for i := 0; i <= MaxRecipients; i++ {
				b := make([]byte, wrappedLen)
				b[0] = byte(i)
				bs = append(bs, base64.StdEncoding.EncodeToString(b))
			}
			f["recipients"] = bs
		},
		"another suite": func(f map[string]any) { f["suite"] = "DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305" },
		"no envelope":   func(f map[string]any) { delete(f, "envelope") },
		"empty envelope": func(f map[string]any) {
			f["envelope"] = ""
		},
		"an unknown field": func(f map[string]any) { f["debug"] = true },
	} {
		_, err := NewReader(bytes.NewReader(signedHeader(t, id, key, edit)), id)
		if !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v; want ErrFormat", name, err)
		}
	}
}

// A tenant who changes a record and writes the end record's chain anew to
// match still cannot pass the log off: the runtime key signed the chain
// over every record's tag.
func TestResealedRecordBreaksTheSignedChain(t *testing.T) {
	id := newID(t)
	s := openLog(t, writeLog(t, id, "ref", "the run said this", "and this"), id)
	s.reseal(t, 0, func(p []byte) { copy(p[recordOverhead:], "the run said THAT") })
	var chain [32]byte
	for _, f := range s.frames[:len(s.frames)-1] {
		chain = chainNext(chain, f)
	}
	s.reseal(t, len(s.frames)-1, func(p []byte) { copy(p[17:49], chain[:]) })
	if _, err := readToEnd(s.bytes(), id); !errors.Is(err, ErrTampered) {
		t.Fatalf("a changed record under a rewritten chain: %v; want ErrTampered", err)
	}
}

// The header's signature covers every field of the header as written:
// changing one, even keeping the runtime key and the signature, is refused
// before any record is read.
func TestHeaderSignatureCoversEveryField(t *testing.T) {
	id := newID(t)
	log := writeLog(t, id, "ref", "a")
	line, rest, _ := bytes.Cut(log, []byte("\n"))
	jsB64, sigB64, _ := bytes.Cut(line[len(Magic):], []byte(" "))
	js, err := base64.StdEncoding.DecodeString(string(jsB64))
	if err != nil {
		t.Fatal(err)
	}
	for field, value := range map[string]any{
		"ref":         "another",
		"measurement": "another",
		"profile":     "debug",
		"started":     time.Unix(1, 0).UTC(),
		"envelope":    base64.StdEncoding.EncodeToString([]byte(`{"kind":"other"}`)),
	} {
		var fields map[string]any
		if err := json.Unmarshal(js, &fields); err != nil {
			t.Fatal(err)
		}
		fields[field] = value
		changed, err := json.Marshal(fields)
		if err != nil {
			t.Fatal(err)
		}
		forged := append([]byte(Magic+base64.StdEncoding.EncodeToString(changed)+" "+string(sigB64)+"\n"), rest...)
		if _, err := NewReader(bytes.NewReader(forged), id); !errors.Is(err, ErrUnsigned) {
			t.Errorf("the header with another %s under the old signature: %v; want ErrUnsigned", field, err)
		}
	}
}
