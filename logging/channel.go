// Package logging carries everything a run says (the workload's stdout and
// stderr, the runtime's own records) to the tenant, and only the tenant.
//
// Under staging and production the host stores a log it can neither read,
// reorder nor trim unnoticed: one HPKE sender context per run (RFC 9180,
// DHKEM(X25519), HKDF-SHA256, AES-256-GCM) to the tenant's log recipient key
// from the measured manifest, every record sealed on it in order, records
// padded to a size bucket, and an end record carrying the count and a hash
// chain.
//
// The log is text, one frame a line, so it streams to a file, a terminal or a
// socket alike:
//
//	ampoule-log v1 <base64 header JSON>
//	<base64 sealed record>
//	...
//	<base64 sealed end record>
//
// The header line, byte for byte, is the HPKE info: changing it breaks every
// record. HPKE's own sequence numbers make a dropped, repeated or reordered
// record fail to open; a record from another run opens under no key of this
// one; a log without its end record is truncated.
package logging

import (
	"crypto/ecdh"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Magic starts the header line of every log.
const Magic = "ampoule-log v1 "

// Suite names the HPKE suite of version 1.
const Suite = "DHKEM(X25519, HKDF-SHA256)/HKDF-SHA256/AES-256-GCM"

// RecipientPrefix starts a textual log recipient (public) key.
const RecipientPrefix = "alog1"

// IdentityPrefix starts a textual log identity (private) key.
const IdentityPrefix = "AMPOULE-LOG-IDENTITY-1"

func kem() hpke.KEM   { return hpke.DHKEM(ecdh.X25519()) }
func kdf() hpke.KDF   { return hpke.HKDFSHA256() }
func aead() hpke.AEAD { return hpke.AES256GCM() }

// Record kinds, sources and levels.
const (
	kindRecord byte = 1
	kindEnd    byte = 2
)

// Source says who produced a record.
type Source byte

// The sources.
const (
	SourceRuntime Source = 1
	SourceStdout  Source = 2
	SourceStderr  Source = 3
)

func (s Source) String() string {
	switch s {
	case SourceRuntime:
		return "runtime"
	case SourceStdout:
		return "stdout"
	case SourceStderr:
		return "stderr"
	}
	return fmt.Sprintf("source(%d)", byte(s))
}

// Level is a record's severity, as hclog numbers them.
type Level byte

// The levels.
const (
	LevelTrace Level = 1
	LevelDebug Level = 2
	LevelInfo  Level = 3
	LevelWarn  Level = 4
	LevelError Level = 5
)

func (l Level) String() string {
	switch l {
	case LevelTrace:
		return "trace"
	case LevelDebug:
		return "debug"
	case LevelInfo:
		return "info"
	case LevelWarn:
		return "warn"
	case LevelError:
		return "error"
	}
	return fmt.Sprintf("level(%d)", byte(l))
}

// Record is one thing a run said.
type Record struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Level   Level     `json:"-"`
	Source  Source    `json:"-"`
	Message []byte    `json:"-"`
}

// Header is the public first line of a log.
type Header struct {
	Version     int       `json:"v"`
	Suite       string    `json:"suite"`
	Enc         []byte    `json:"enc"`
	Ref         string    `json:"ref"`
	Measurement string    `json:"measurement"`
	Profile     string    `json:"profile"`
	Started     time.Time `json:"started"`
	// KeyCheck is exported from the HPKE context ("key check", 16 bytes):
	// a reader with the wrong identity learns so before any record.
	KeyCheck []byte `json:"key_check"`
}

// Buckets are the plaintext sizes a sealed record may have; a record is
// padded to the smallest that holds it, so a log reveals only the bucket,
// never a message's length.
var buckets = [...]int{256, 1024, 4096, 16384, 65536}

// recordOverhead is kind, seq, time, level, source and length.
const recordOverhead = 1 + 8 + 8 + 1 + 1 + 4

// MaxMessage is the most one record carries; longer writes are split.
const MaxMessage = 65536 - recordOverhead

func bucketFor(n int) int {
	for _, b := range buckets {
		if n <= b {
			return b
		}
	}
	return buckets[len(buckets)-1]
}

// Recipient is a tenant's log public key.
type Recipient struct{ pk hpke.PublicKey }

// ParseRecipient parses "alog1" followed by 64 hex digits.
func ParseRecipient(s string) (*Recipient, error) {
	if !strings.HasPrefix(s, RecipientPrefix) {
		return nil, fmt.Errorf("a log recipient starts with %q", RecipientPrefix)
	}
	raw, err := hex.DecodeString(s[len(RecipientPrefix):])
	if err != nil || len(raw) != 32 {
		return nil, errors.New("a log recipient is alog1 followed by 64 hex digits")
	}
	pk, err := kem().NewPublicKey(raw)
	if err != nil {
		return nil, err
	}
	return &Recipient{pk: pk}, nil
}

// String returns the recipient as it is written in a manifest.
func (r *Recipient) String() string { return RecipientPrefix + hex.EncodeToString(r.pk.Bytes()) }

// Identity is a tenant's log private key.
type Identity struct{ sk hpke.PrivateKey }

// GenerateIdentity makes a new identity.
func GenerateIdentity() (*Identity, error) {
	sk, err := kem().GenerateKey()
	if err != nil {
		return nil, err
	}
	return &Identity{sk: sk}, nil
}

// ParseIdentity reads an identity file: comment lines starting with '#' and
// one line "AMPOULE-LOG-IDENTITY-1" followed by 64 hex digits.
func ParseIdentity(data []byte) (*Identity, error) {
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.HasPrefix(line, IdentityPrefix) {
			return nil, fmt.Errorf("not an identity line (it starts with %q)", IdentityPrefix)
		}
		raw, err := hex.DecodeString(line[len(IdentityPrefix):])
		if err != nil || len(raw) != 32 {
			return nil, errors.New("an identity is AMPOULE-LOG-IDENTITY-1 followed by 64 hex digits")
		}
		sk, err := kem().NewPrivateKey(raw)
		if err != nil {
			return nil, err
		}
		return &Identity{sk: sk}, nil
	}
	return nil, errors.New("no identity line in the file")
}

// Recipient returns the identity's public half.
func (id *Identity) Recipient() *Recipient { return &Recipient{pk: id.sk.PublicKey()} }

// Marshal returns the identity file's contents.
func (id *Identity) Marshal(created time.Time) ([]byte, error) {
	raw, err := id.sk.Bytes()
	if err != nil {
		return nil, err
	}
	return []byte(fmt.Sprintf("# created: %s\n# recipient: %s\n%s%s\n",
		created.UTC().Format(time.RFC3339), id.Recipient(), IdentityPrefix, hex.EncodeToString(raw))), nil
}

// hpkeInfo labels every log's key schedule.
var hpkeInfo = []byte("ampoule/log/v1")

// keyCheckLabel is the exporter context of the header's key check.
const keyCheckLabel = "ampoule/log/v1 key check"

// b64 decodes strictly: a frame has exactly one encoding, so no bit of a log
// can change without the change being seen.
var b64 = base64.StdEncoding.Strict()

// sealer seals records in order on one HPKE context and keeps the chain.
// Every record's AAD is the SHA-256 of the header line as written and the
// record's sequence number, so the header (enc, ref, measurement, profile)
// cannot change under the records.
type sealer struct {
	s      *hpke.Sender
	header [32]byte
	seq    uint64
	chain  [32]byte
	buf    []byte
}

// newSealer makes the header line (without its newline) and the sealer for
// a run.
func newSealer(r *Recipient, h Header) ([]byte, *sealer, error) {
	enc, s, err := hpke.NewSender(r.pk, kdf(), aead(), hpkeInfo)
	if err != nil {
		return nil, nil, err
	}
	check, err := s.Export(keyCheckLabel, 16)
	if err != nil {
		return nil, nil, err
	}
	h.Version, h.Suite, h.Enc, h.KeyCheck = 1, Suite, enc, check
	js, err := json.Marshal(h)
	if err != nil {
		return nil, nil, err
	}
	line := []byte(Magic + base64.StdEncoding.EncodeToString(js))
	return line, &sealer{s: s, header: sha256.Sum256(line)}, nil
}

func aadFor(header [32]byte, seq uint64) []byte {
	aad := make([]byte, 0, 40)
	aad = append(aad, header[:]...)
	return binary.BigEndian.AppendUint64(aad, seq)
}

// frame encodes one payload as a line.
func frame(payload []byte) []byte {
	line := make([]byte, base64.StdEncoding.EncodedLen(len(payload))+1)
	base64.StdEncoding.Encode(line, payload)
	line[len(line)-1] = '\n'
	return line
}

func (s *sealer) seal(plain []byte) ([]byte, error) {
	ct, err := s.s.Seal(aadFor(s.header, s.seq), plain)
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	h.Write(s.chain[:])
	h.Write(ct)
	h.Sum(s.chain[:0])
	s.seq++
	return frame(ct), nil
}

// sealRecord pads and seals one record.
func (s *sealer) sealRecord(t time.Time, level Level, src Source, msg []byte) ([]byte, error) {
	n := recordOverhead + len(msg)
	p := s.buf[:0]
	if cap(p) < bucketFor(n) {
		p = make([]byte, 0, bucketFor(n))
	}
	p = append(p, kindRecord)
	p = binary.BigEndian.AppendUint64(p, s.seq)
	p = binary.BigEndian.AppendUint64(p, uint64(t.UnixNano()))
	p = append(p, byte(level), byte(src))
	p = binary.BigEndian.AppendUint32(p, uint32(len(msg)))
	p = append(p, msg...)
	p = p[:bucketFor(n)]
	clear(p[n:])
	s.buf = p
	return s.seal(p)
}

// sealEnd seals the end record: the count of records before it, how many
// were dropped, and the chain over their ciphertexts.
func (s *sealer) sealEnd(dropped uint64) ([]byte, error) {
	p := make([]byte, 0, buckets[0])
	p = append(p, kindEnd)
	p = binary.BigEndian.AppendUint64(p, s.seq)
	p = binary.BigEndian.AppendUint64(p, dropped)
	p = append(p, s.chain[:]...)
	p = p[:buckets[0]]
	return s.seal(p)
}
