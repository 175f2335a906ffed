package logging

import (
	"bufio"
	"bytes"
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
)

// maxLine bounds one frame line: the largest bucket, sealed and encoded.
const maxLine = 128 << 10

// Reader opens a log written by a Writer, in order, and verifies that it is
// whole.
type Reader struct {
	in      *bufio.Reader
	header  Header
	hash    [32]byte
	r       *hpke.Recipient
	seq     uint64
	chain   [32]byte
	ended   bool
	Dropped uint64 // from the end record
}

// NewReader reads and checks the header line.
func NewReader(in io.Reader, id *Identity) (*Reader, error) {
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
	if !bytes.HasPrefix(line, []byte(Magic)) {
		return nil, fmt.Errorf("%w: the first line does not start with %q", ErrFormat, Magic)
	}
	js, err := b64.DecodeString(string(line[len(Magic):]))
	if err != nil {
		return nil, fmt.Errorf("%w: the header is not base64", ErrFormat)
	}
	var h Header
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return nil, fmt.Errorf("%w: the header: %v", ErrFormat, err)
	}
	if h.Version != 1 || h.Suite != Suite {
		return nil, fmt.Errorf("%w: version %d, suite %q", ErrFormat, h.Version, h.Suite)
	}
	r, err := hpke.NewRecipient(h.Enc, id.sk, kdf(), aead(), hpkeInfo)
	if err != nil {
		return nil, fmt.Errorf("%w: the header's key: %v", ErrFormat, err)
	}
	check, err := r.Export(keyCheckLabel, 16)
	if err != nil || !hmac.Equal(check, h.KeyCheck) {
		return nil, fmt.Errorf("%w (or its header was changed)", ErrWrongIdentity)
	}
	return &Reader{in: br, header: h, hash: sha256.Sum256(line), r: r}, nil
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
	line, err := readLine(r.in)
	if r.ended {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("%w: lines after the end record", ErrTampered)
	}
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, fmt.Errorf("%w: after %d records, with no end record", ErrTruncated, r.seq)
	}
	if err != nil {
		return nil, err
	}
	ct := make([]byte, b64.DecodedLen(len(line)))
	n, err := b64.Decode(ct, line)
	if err != nil {
		return nil, fmt.Errorf("%w: record %d is not base64", ErrTampered, r.seq)
	}
	ct = ct[:n]
	plain, err := r.r.Open(aadFor(r.hash, r.seq), ct)
	if err != nil {
		return nil, fmt.Errorf("%w: record %d does not open in its place", ErrTampered, r.seq)
	}
	if len(plain) < 1+8 || binary.BigEndian.Uint64(plain[1:9]) != r.seq {
		return nil, fmt.Errorf("%w: record %d is malformed", ErrTampered, r.seq)
	}
	switch plain[0] {
	case kindRecord:
		if len(plain) < recordOverhead {
			return nil, fmt.Errorf("%w: record %d is short", ErrTampered, r.seq)
		}
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
		if len(plain) < 1+8+8+32 {
			return nil, fmt.Errorf("%w: the end record is short", ErrTampered)
		}
		if !bytes.Equal(plain[17:49], r.chain[:]) {
			return nil, fmt.Errorf("%w: the end record's chain does not match the records", ErrTampered)
		}
		r.Dropped = binary.BigEndian.Uint64(plain[9:17])
		r.ended = true
		return nil, io.EOF
	}
	return nil, fmt.Errorf("%w: record %d has kind %d", ErrTampered, r.seq, plain[0])
}

func (r *Reader) advance(ct []byte) {
	h := sha256.New()
	h.Write(r.chain[:])
	h.Write(ct)
	h.Sum(r.chain[:0])
	r.seq++
}
