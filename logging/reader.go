package logging

import (
	"bufio"
	"bytes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Errors a Reader returns, each for one way a log can be wrong.
var (
	// ErrFormat: not a log, or a line that is not a frame.
	ErrFormat = errors.New("not an ampoule log")
	// ErrWrongIdentity: the first record does not open: the identity is not
	// the log's recipient (or the header was changed).
	ErrWrongIdentity = errors.New("the identity does not open this log")
	// ErrTampered: a record does not open in its place: dropped, repeated,
	// reordered, spliced from another run or altered.
	ErrTampered = errors.New("the log was altered")
	// ErrTruncated: the log ends before its end record.
	ErrTruncated = errors.New("the log is truncated")
	// ErrUnsigned: the header is not signed by the runtime key it names.
	ErrUnsigned = errors.New("the log's header is not signed by its runtime key")
)

// maxLine bounds the header line: a header carrying an envelope of
// MaxEnvelope bytes, twice base64-encoded, with room to spare.
const maxLine = 2 * MaxEnvelope

// parseHeaderLine reads a version 3 (or 2) header line and checks its
// signature by the runtime key it carries. It returns the header, whose
// Envelope the caller must still judge.
func parseHeaderLine(line []byte) (Header, error) {
	var h Header
	if bytes.HasPrefix(line, []byte(magicV1)) {
		return h, fmt.Errorf("%w: a version 1 log, which anyone could have written (it carries no signature of the run's TEE); this launch reads versions 2 and %d", ErrFormat, Version)
	}
	magic, version, suite := Magic, Version, Suite
	if bytes.HasPrefix(line, []byte(magicV2)) {
		magic, version, suite = magicV2, versionV2, suiteV2
	} else if !bytes.HasPrefix(line, []byte(Magic)) {
		return h, fmt.Errorf("%w: the first line does not start with %q", ErrFormat, Magic)
	}
	jsB64, sigB64, ok := bytes.Cut(line[len(magic):], []byte(" "))
	if !ok {
		return h, fmt.Errorf("%w: the header line has no signature", ErrFormat)
	}
	js, err := b64.DecodeString(string(jsB64))
	if err != nil {
		return h, fmt.Errorf("%w: the header is not base64", ErrFormat)
	}
	sig, err := b64.DecodeString(string(sigB64))
	if err != nil {
		return h, fmt.Errorf("%w: the header's signature is not base64", ErrFormat)
	}
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return h, fmt.Errorf("%w: the header: %v", ErrFormat, err)
	}
	if dec.More() {
		return h, fmt.Errorf("%w: the header holds more than one document", ErrFormat)
	}
	if h.Version != version || h.Suite != suite {
		return h, fmt.Errorf("%w: version %d, suite %q", ErrFormat, h.Version, h.Suite)
	}
	if err := checkRecipients(h); err != nil {
		return h, err
	}
	if len(h.Envelope) == 0 || len(h.Envelope) > MaxEnvelope {
		return h, fmt.Errorf("%w: the header carries no evidence envelope", ErrFormat)
	}
	pk, err := ParseRuntimeKey(h.RuntimeKey)
	if err != nil {
		return h, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if !ecdsa.VerifyASN1(pk, headerDigest(js), sig) {
		return h, ErrUnsigned
	}
	return h, nil
}

// checkRecipients checks the shape of a header's key material: version 2's
// one enc, or version 3's 1 to MaxRecipients blocks of wrappedLen bytes,
// no two the same.
func checkRecipients(h Header) error {
	if h.Version == versionV2 {
		if len(h.Enc) == 0 || h.Recipients != nil {
			return fmt.Errorf("%w: a version 2 header carries one enc and no recipient blocks", ErrFormat)
		}
		return nil
	}
	if h.Enc != nil {
		return fmt.Errorf("%w: a version %d header carries recipient blocks, not an enc", ErrFormat, Version)
	}
	if len(h.Recipients) == 0 || len(h.Recipients) > MaxRecipients {
		return fmt.Errorf("%w: %d recipient blocks; a log has 1 to %d", ErrFormat, len(h.Recipients), MaxRecipients)
	}
	seen := map[string]bool{}
	for i, b := range h.Recipients {
		if len(b) != wrappedLen {
			return fmt.Errorf("%w: recipient block %d is %d bytes, not %d", ErrFormat, i, len(b), wrappedLen)
		}
		if seen[string(b)] {
			return fmt.Errorf("%w: recipient block %d repeats an earlier one", ErrFormat, i)
		}
		seen[string(b)] = true
	}
	return nil
}

// openKeys derives the record AEAD, base nonce and key check that id's
// key opens in h: version 3's log key unwrapped from the first block that
// id opens, or version 2's HPKE context. A key that opens no
// block is ErrWrongIdentity.
func openKeys(h Header, id *Identity) (cipher.AEAD, [12]byte, []byte, error) {
	var export func(string, int) ([]byte, error)
	if h.Version == versionV2 {
		r, err := hpke.NewRecipient(h.Enc, id.sk, kdf(), hpke.ExportOnly(), hpkeInfo)
		if err != nil {
			return nil, [12]byte{}, nil, fmt.Errorf("%w: the header's key: %v", ErrFormat, err)
		}
		export = r.Export
	} else {
		for _, b := range h.Recipients {
			logKey, err := hpke.Open(id.sk, kdf(), hpke.AES256GCM(), wrapInfo, b)
			if err == nil && len(logKey) == 32 {
				export = logKeyExport(logKey, h.Recipients)
				break
			}
		}
		if export == nil {
			return nil, [12]byte{}, nil, fmt.Errorf("%w: none of its %d recipient blocks opens with it (or its header was changed)", ErrWrongIdentity, len(h.Recipients))
		}
	}
	g, base, check, err := keys(export)
	if err != nil || !hmac.Equal(check, h.KeyCheck) {
		return nil, [12]byte{}, nil, fmt.Errorf("%w (or its header was changed)", ErrWrongIdentity)
	}
	return g, base, check, nil
}

// Reader opens a log written by a Writer, in order, and verifies that it is
// whole.
type Reader struct {
	in      *bufio.Reader
	header  Header
	key     *ecdsa.PublicKey
	hash    [32]byte
	aead    cipher.AEAD
	base    [12]byte
	seq     uint64
	chain   [32]byte
	ended   bool
	Dropped uint64 // from the end record
}

// NewReader reads and checks the header line: its signature by the runtime
// key it names, and that id opens it. It does not judge the envelope: the
// caller must check that the envelope's evidence binds Header().RuntimeKey
// and the measurement before trusting a record.
//
// The log may be in its binary form, its text form (NewTextWriter), or
// either inside containerd's CRI log file.
func NewReader(in io.Reader, id *Identity) (*Reader, error) {
	in, err := unwrap(in)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(in, 64<<10)
	line, err := readLine(br)
	switch {
	case err == io.EOF:
		return nil, fmt.Errorf("%w: empty", ErrFormat)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return nil, fmt.Errorf("%w: the header line is incomplete", ErrTruncated)
	case err != nil:
		return nil, err
	}
	h, err := parseHeaderLine(line)
	if err != nil {
		return nil, err
	}
	pk, _ := ParseRuntimeKey(h.RuntimeKey)
	g, base, _, err := openKeys(h, id)
	if err != nil {
		return nil, err
	}
	return &Reader{in: br, header: h, key: pk, hash: sha256.Sum256(line), aead: g, base: base}, nil
}

// readLine reads one line without its newline; a last line without one is
// incomplete and reported as io.ErrUnexpectedEOF.
func readLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxLine {
			return nil, fmt.Errorf("%w: a line longer than %d bytes", ErrFormat, maxLine)
		}
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && len(line) > 0:
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// Header returns the log's header.
func (r *Reader) Header() Header { return r.header }

// Next returns the next record, io.EOF at a verified end record, or an error
// wrapping one of ErrFormat, ErrWrongIdentity, ErrTampered or ErrTruncated.
// Called again after the end record it checks that nothing follows it
// (io.EOF) and reports ErrTampered otherwise; a reader of a live log, which
// may not end, need not.
func (r *Reader) Next() (*Record, error) {
	var size [4]byte
	_, err := io.ReadFull(r.in, size[:])
	if r.ended {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("%w: bytes after the end record", ErrTampered)
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("%w: after %d records, with no end record", ErrTruncated, r.seq)
	}
	if err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 16 || n > maxFrame {
		return nil, fmt.Errorf("%w: record %d claims %d bytes", ErrTampered, r.seq, n)
	}
	ct := make([]byte, n)
	if _, err := io.ReadFull(r.in, ct); err != nil {
		if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: record %d is cut short", ErrTruncated, r.seq)
		}
		return nil, err
	}
	nonce, aad := nonceFor(r.base, r.seq), aadFor(r.hash, r.seq)
	plain, err := r.aead.Open(nil, nonce[:], ct, aad[:])
	if err != nil {
		return nil, fmt.Errorf("%w: record %d does not open in its place", ErrTampered, r.seq)
	}
	if len(plain) < recordOverhead || binary.BigEndian.Uint64(plain[1:9]) != r.seq {
		return nil, fmt.Errorf("%w: record %d is malformed", ErrTampered, r.seq)
	}
	switch plain[0] {
	case kindRecord:
		size := int(binary.BigEndian.Uint32(plain[19:23]))
		if recordOverhead+size > len(plain) {
			return nil, fmt.Errorf("%w: record %d claims %d bytes", ErrTampered, r.seq, size)
		}
		rec := &Record{
			Seq:     r.seq,
			Time:    time.Unix(0, int64(binary.BigEndian.Uint64(plain[9:17]))).UTC(),
			Level:   Level(plain[17]),
			Source:  Source(plain[18]),
			Message: plain[recordOverhead : recordOverhead+size],
		}
		r.advance(ct)
		return rec, nil
	case kindEnd:
		if len(plain) < endSigAt+maxEndSig {
			return nil, fmt.Errorf("%w: the end record is short", ErrTampered)
		}
		if !bytes.Equal(plain[17:49], r.chain[:]) {
			return nil, fmt.Errorf("%w: the end record's chain does not match the records", ErrTampered)
		}
		dropped := binary.BigEndian.Uint64(plain[9:17])
		n := int(binary.BigEndian.Uint16(plain[49:51]))
		if n > maxEndSig || !ecdsa.VerifyASN1(r.key, endDigest(r.hash, r.seq, dropped, r.chain), plain[endSigAt:endSigAt+n]) {
			return nil, fmt.Errorf("%w: the end record is not signed by the runtime key", ErrTampered)
		}
		r.Dropped = dropped
		r.ended = true
		return nil, io.EOF
	}
	return nil, fmt.Errorf("%w: record %d has kind %d", ErrTampered, r.seq, plain[0])
}

func (r *Reader) advance(ct []byte) {
	r.chain = chainNext(r.chain, ct)
	r.seq++
}
