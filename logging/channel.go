// Package logging carries everything a run says (the workload's stdout and
// stderr, the runtime's own records) to the tenant, and only the tenant.
//
// Under staging and production the host stores a log it can neither read,
// reorder, trim nor write itself unnoticed: a fresh 32-byte log key per
// run, wrapped with HPKE (RFC 9180, DHKEM(X25519), HKDF-SHA256,
// AES-256-GCM) to each of the tenant's log recipient keys from the measured
// manifest (one to MaxRecipients of them: a team), the record key derived
// from it and from every wrapped block in order, every record sealed in
// order, records padded to a size bucket, and an end record carrying the
// count and a hash chain. HPKE's base mode authenticates no sender (anyone
// can seal to a public key), so the header (the wrapped keys, ref,
// measurement, profile and the run's evidence envelope) and the end record
// (count, drops, chain) are signed with the run's runtime key, the P-256
// key made inside the TEE for the run whose public half the evidence's
// report data binds: only the run's TEE can write a log that verifies, and
// the header's enc ties every record's key to that signature.
//
// A log is one text line, then binary frames, so that a person can tell what
// a file is and a stream costs nothing to frame:
//
//	ampoule-log v3 <base64 header JSON> <base64 header signature>\n
//	<uint32 length><sealed record>
//	...
//	<uint32 length><sealed end record>
//
// The SHA-256 of the header line, byte for byte, and the record's sequence
// number are every record's AAD: changing the header breaks every record.
// HPKE's own sequence numbers make a dropped, repeated or reordered record
// fail to open; a record from another run opens under no key of this one; a
// log without its end record is truncated; the end record's chain runs over
// every record's authentication tag. Version 1 logs, which carried no
// signature, are refused. Version 2 logs (one recipient, the record key
// exported from one HPKE context whose enc the header carried) are still
// read: they are signed and chained as version 3 logs are, so refusing
// them would lock a tenant out of logs already stored for no gain.
package logging

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/rand"
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

// Magic starts the header line of every log this package writes.
const Magic = "ampoule-log v3 "

// magicV2 started the header line of version 2, a log to one recipient,
// which this package still reads.
const magicV2 = "ampoule-log v2 "

// magicV1 started the header line of version 1, whose logs anyone could
// write: they are refused with a message saying so.
const magicV1 = "ampoule-log v1 "

// Version is the version number of the headers this package writes.
const Version = 3

// Suite names the suite of version 3: the HPKE KEM, KDF and AEAD that wrap
// the log key to each recipient, the KDF and AEAD that seal records under
// the key derived from it, and the signature of the header and end record
// by the run's runtime key.
const Suite = "DHKEM(X25519, HKDF-SHA256)/HKDF-SHA256/AES-256-GCM wrap; HKDF-SHA256 records AES-256-GCM; header and end ECDSA P-256 SHA-256"

// versionV2 and suiteV2 are version 2's, still read.
const (
	versionV2 = 2
	suiteV2   = "DHKEM(X25519, HKDF-SHA256)/HKDF-SHA256/export-only; records AES-256-GCM; header and end ECDSA P-256 SHA-256"
)

// MaxRecipients bounds the recipients one log is wrapped to: a reader
// tries each block, and the header grows by one block per recipient.
const MaxRecipients = 16

// wrappedLen is the length of one recipient block: the HPKE enc (32 bytes
// for X25519), the 32-byte log key and the AEAD tag.
const wrappedLen = 32 + 32 + 16

// RecipientPrefix starts a textual log recipient (public) key.
const RecipientPrefix = "alog1"

// IdentityPrefix starts a textual log identity (private) key.
const IdentityPrefix = "AMPOULE-LOG-IDENTITY-1"

func kem() hpke.KEM { return hpke.DHKEM(ecdh.X25519()) }
func kdf() hpke.KDF { return hpke.HKDFSHA256() }

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
	Version int    `json:"v"`
	Suite   string `json:"suite"`
	// Enc is version 2's HPKE encapsulation, to its one recipient; a
	// version 3 header has none.
	Enc []byte `json:"enc,omitempty"`
	// Recipients are version 3's wrapped log keys, one per recipient in
	// the manifest's order: each is HPKE's single-shot Seal of the log
	// key (enc followed by ciphertext). The record key is derived from the
	// log key salted with every block in order, so a block moved, dropped,
	// added or swapped opens no record, signature or not. The writer sets
	// them.
	Recipients  [][]byte  `json:"recipients,omitempty"`
	Ref         string    `json:"ref"`
	Measurement string    `json:"measurement"`
	Profile     string    `json:"profile"`
	Started     time.Time `json:"started"`
	// KeyCheck is exported from the HPKE context ("key check", 16 bytes):
	// a reader with the wrong identity learns so before any record.
	KeyCheck []byte `json:"key_check"`
	// RuntimeKey is the run's runtime public key (a P-256 point,
	// uncompressed), which signs the header and the end record. The writer
	// sets it from the key it is given.
	RuntimeKey []byte `json:"runtime_key"`
	// Envelope is the run's evidence envelope (JSON, as tee encodes it),
	// whose report data must bind RuntimeKey and Measurement: this package
	// carries it and the signature covers it; judging it is the reader's
	// caller's (launch logs decrypt).
	Envelope []byte `json:"envelope"`
}

// MaxEnvelope bounds the envelope a header carries (tee.MaxEnvelope).
const MaxEnvelope = 1 << 20

// Signature domains: what the runtime key signs, each hashed with SHA-256.
// Version 3 signs under version 2's domains: the header JSON names its
// version, and the end record's digest covers the header line's hash.
const (
	headerSigDomain = "ampoule/log/v2 header\x00"
	endSigDomain    = "ampoule/log/v2 end\x00"
)

// headerDigest is what the header's signature signs: the domain and the
// header JSON as written.
func headerDigest(js []byte) []byte {
	h := sha256.New()
	h.Write([]byte(headerSigDomain))
	h.Write(js)
	return h.Sum(nil)
}

// wrapInfo is the HPKE info of every recipient block.
var wrapInfo = []byte("ampoule/log/v3 recipient")

// recipientsSalt hashes every recipient block, in order, into the salt of
// the record key's derivation: the key that opens the records depends on
// the whole list, not only on the block a reader opened.
func recipientsSalt(blocks [][]byte) []byte {
	h := sha256.New()
	h.Write([]byte("ampoule/log/v3 recipients\x00"))
	for _, b := range blocks {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	return h.Sum(nil)
}

// logKeyExport is version 3's exporter: HKDF-SHA256 from the log key,
// salted with the recipient blocks, under the same labels as version 2's
// HPKE exporter.
func logKeyExport(logKey []byte, blocks [][]byte) func(string, int) ([]byte, error) {
	prk, err := hkdf.Extract(sha256.New, logKey, recipientsSalt(blocks))
	return func(label string, n int) ([]byte, error) {
		if err != nil {
			return nil, err
		}
		return hkdf.Expand(sha256.New, prk, label, n)
	}
}

// endDigest is what the end record's signature signs: the header line's
// hash, the count of records before the end, the drops and the chain.
func endDigest(header [32]byte, count, dropped uint64, chain [32]byte) []byte {
	h := sha256.New()
	h.Write([]byte(endSigDomain))
	h.Write(header[:])
	var n [16]byte
	binary.BigEndian.PutUint64(n[:8], count)
	binary.BigEndian.PutUint64(n[8:], dropped)
	h.Write(n[:])
	h.Write(chain[:])
	return h.Sum(nil)
}

// ParseRuntimeKey reads a runtime public key: a P-256 point, uncompressed.
func ParseRuntimeKey(raw []byte) (*ecdsa.PublicKey, error) {
	pk, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), raw)
	if err != nil {
		return nil, fmt.Errorf("the runtime key is not a P-256 point: %w", err)
	}
	return pk, nil
}

// Buckets are the message sizes a sealed record may carry; a message is
// padded to the smallest that holds it, so a log reveals only the bucket,
// never a message's length.
var buckets = [...]int{256, 512, 1024, 2048, 4096, 8192, 16384, 32768, 65536}

// recordOverhead is kind, seq, time, level, source and length.
const recordOverhead = 1 + 8 + 8 + 1 + 1 + 4

// MaxMessage is the most one record carries; longer writes are split.
const MaxMessage = 65536

// maxFrame bounds a sealed record: the largest bucket, its overhead and the
// AEAD tag.
const maxFrame = recordOverhead + MaxMessage + 16

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

// decodeKey reads prefix followed by the 64 hex digits of a 32-byte key.
func decodeKey(s, prefix, what string) ([]byte, error) {
	raw, err := hex.DecodeString(strings.TrimPrefix(s, prefix))
	if !strings.HasPrefix(s, prefix) || err != nil || len(raw) != 32 {
		return nil, fmt.Errorf("a log %s is %s followed by 64 hex digits", what, prefix)
	}
	return raw, nil
}

// ParseRecipient parses "alog1" followed by 64 hex digits.
func ParseRecipient(s string) (*Recipient, error) {
	raw, err := decodeKey(s, RecipientPrefix, "recipient")
	if err != nil {
		return nil, err
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
		raw, err := decodeKey(line, IdentityPrefix, "identity")
		if err != nil {
			return nil, err
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

// Exporter contexts (RFC 9180, section 5.3) of a log's HPKE context.
const (
	keyCheckLabel  = "ampoule/log/v1 key check"
	recordKeyLabel = "ampoule/log/v1 record key"
	nonceLabel     = "ampoule/log/v1 record nonce"
)

// b64 decodes the header strictly: it has exactly one encoding, so no bit of
// it can change without the change being seen.
var b64 = base64.StdEncoding.Strict()

// keys derives a log's record AEAD and base nonce from its HPKE context.
// Records are sealed as HPKE's own Seal would seal them (AES-256-GCM, the
// nonce the base XOR the sequence number), but with a key exported from the
// context: crypto/hpke's Seal allocates per call and ran at 2.2 GB/s here
// against 5.4 GB/s for AES-256-GCM itself.
func keys(export func(string, int) ([]byte, error)) (cipher.AEAD, [12]byte, []byte, error) {
	var base [12]byte
	key, err := export(recordKeyLabel, 32)
	if err != nil {
		return nil, base, nil, err
	}
	nonce, err := export(nonceLabel, 12)
	if err != nil {
		return nil, base, nil, err
	}
	check, err := export(keyCheckLabel, 16)
	if err != nil {
		return nil, base, nil, err
	}
	blk, err := aes.NewCipher(key)
	if err != nil {
		return nil, base, nil, err
	}
	g, err := cipher.NewGCM(blk)
	if err != nil {
		return nil, base, nil, err
	}
	copy(base[:], nonce)
	return g, base, check, nil
}

// nonceFor is the base nonce XOR the sequence number, as RFC 9180 computes
// a context's nonces.
func nonceFor(base [12]byte, seq uint64) [12]byte {
	var seqBytes [8]byte
	binary.BigEndian.PutUint64(seqBytes[:], seq)
	for i := range seqBytes {
		base[4+i] ^= seqBytes[i]
	}
	return base
}

// sealer seals records in order and keeps the chain. Every record's AAD is
// the SHA-256 of the header line as written and the record's sequence
// number, so the header (enc, ref, measurement, profile, envelope, runtime
// key and signature) cannot change under the records.
type sealer struct {
	aead   cipher.AEAD
	base   [12]byte
	header [32]byte
	seq    uint64
	chain  [32]byte
	key    *ecdsa.PrivateKey
}

// newSealer makes the header line (without its newline), signed with key,
// and the sealer for a run whose log key is wrapped to each of rs.
func newSealer(rs []*Recipient, h Header, key *ecdsa.PrivateKey) ([]byte, *sealer, error) {
	if len(rs) == 0 || len(rs) > MaxRecipients {
		return nil, nil, fmt.Errorf("a log needs 1 to %d recipients, not %d", MaxRecipients, len(rs))
	}
	seen := map[string]bool{}
	for _, r := range rs {
		if r == nil {
			return nil, nil, errors.New("a log recipient is missing")
		}
		if seen[r.String()] {
			return nil, nil, fmt.Errorf("the log recipient %s is given twice", r)
		}
		seen[r.String()] = true
	}
	if key == nil || key.Curve != elliptic.P256() {
		return nil, nil, errors.New("a log needs the run's P-256 runtime key to sign it")
	}
	if len(h.Envelope) == 0 || len(h.Envelope) > MaxEnvelope {
		return nil, nil, fmt.Errorf("a log needs the run's evidence envelope (1 to %d bytes), not %d bytes", MaxEnvelope, len(h.Envelope))
	}
	pub, err := key.PublicKey.Bytes()
	if err != nil {
		return nil, nil, err
	}
	logKey := make([]byte, 32)
	if _, err := rand.Read(logKey); err != nil {
		return nil, nil, err
	}
	blocks := make([][]byte, len(rs))
	for i, r := range rs {
		if blocks[i], err = hpke.Seal(r.pk, kdf(), hpke.AES256GCM(), wrapInfo, logKey); err != nil {
			return nil, nil, err
		}
	}
	g, base, check, err := keys(logKeyExport(logKey, blocks))
	if err != nil {
		return nil, nil, err
	}
	h.Version, h.Suite, h.Enc, h.Recipients, h.KeyCheck, h.RuntimeKey = Version, Suite, nil, blocks, check, pub
	js, err := json.Marshal(h)
	if err != nil {
		return nil, nil, err
	}
	sig, err := ecdsa.SignASN1(rand.Reader, key, headerDigest(js))
	if err != nil {
		return nil, nil, err
	}
	line := []byte(Magic + base64.StdEncoding.EncodeToString(js) + " " + base64.StdEncoding.EncodeToString(sig))
	return line, &sealer{aead: g, base: base, header: sha256.Sum256(line), key: key}, nil
}

func aadFor(header [32]byte, seq uint64) [40]byte {
	var aad [40]byte
	copy(aad[:32], header[:])
	binary.BigEndian.PutUint64(aad[32:], seq)
	return aad
}

// seal numbers plain as the next record (bytes 1 to 9), seals it and
// appends its frame to dst.
func (s *sealer) seal(dst, plain []byte) []byte {
	binary.BigEndian.PutUint64(plain[1:9], s.seq)
	nonce, aad := nonceFor(s.base, s.seq), aadFor(s.header, s.seq)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(plain)+s.aead.Overhead()))
	start := len(dst)
	dst = s.aead.Seal(dst, nonce[:], plain, aad[:])
	s.chain = chainNext(s.chain, dst[start:])
	s.seq++
	return dst
}

// chainNext extends the chain by one sealed record's authentication tag,
// which stands for the whole record under the log's key.
func chainNext(chain [32]byte, ct []byte) [32]byte {
	var in [32 + 16]byte
	copy(in[:32], chain[:])
	copy(in[32:], ct[len(ct)-16:])
	return sha256.Sum256(in[:])
}

// layoutRecord lays out a record's plaintext in p (reused when it is large
// enough), padded to its bucket, with the sequence number left for the
// sealer.
func layoutRecord(p []byte, t time.Time, level Level, src Source, msg []byte) []byte {
	size := recordOverhead + bucketFor(len(msg))
	if cap(p) < size {
		p = make([]byte, size)
	}
	p = p[:size]
	p[0] = kindRecord
	binary.BigEndian.PutUint64(p[9:17], uint64(t.UnixNano()))
	p[17], p[18] = byte(level), byte(src)
	binary.BigEndian.PutUint32(p[19:23], uint32(len(msg)))
	n := copy(p[recordOverhead:], msg)
	clear(p[recordOverhead+n:]) // the padding
	return p
}

// End record layout: kind, seq, drops (9:17), chain (17:49), the
// signature's length (49:51) and the signature (ASN.1, at most 72 bytes).
const (
	endSigAt  = 51
	maxEndSig = 72
)

// sealEnd seals the end record (the count of records before it, how many
// were dropped, the chain over them, and the runtime key's signature over
// all three and the header), appending its frame to dst.
func (s *sealer) sealEnd(dst []byte, dropped uint64) ([]byte, error) {
	sig, err := ecdsa.SignASN1(rand.Reader, s.key, endDigest(s.header, s.seq, dropped, s.chain))
	if err != nil {
		return dst, err
	}
	if len(sig) > maxEndSig {
		return dst, fmt.Errorf("a %d-byte signature", len(sig))
	}
	p := make([]byte, recordOverhead+buckets[0])
	p[0] = kindEnd
	binary.BigEndian.PutUint64(p[9:17], dropped)
	copy(p[17:49], s.chain[:])
	binary.BigEndian.PutUint16(p[49:51], uint16(len(sig)))
	copy(p[endSigAt:], sig)
	return s.seal(dst, p), nil
}
