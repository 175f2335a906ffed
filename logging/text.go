package logging

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"regexp"
)

// The text form of a log, for sinks that carry lines, not bytes: a
// container's stdout, which containerd's CRI splits into lines (dropping a
// '\r' before each '\n', which would corrupt binary frames) and stamps
// into its log file, and which `kubectl logs` prints back. It is the
// binary log with nothing changed that is authenticated:
//
//	ampoule-log-text v1\n
//	ampoule-log v3 <base64 header JSON> <base64 header signature>\n
//	<base64 of the frames a write carried>\n
//	...
//
// The header line is the binary log's own, byte for byte, so every
// record's AAD is the same; each later line is standard base64 (padded)
// of up to textChunk bytes of the frames. NewReader reads this form, and
// either form inside a CRI log file, as well as the binary one.
const TextMagic = "ampoule-log-text v1"

// textChunk is how many bytes of frames one line carries at most: 4096
// base64 characters, far under CRI's 16 KiB line.
const textChunk = 3072

// maxTextLine bounds a line the reader takes, after joining CRI's
// partial lines.
const maxTextLine = 1 << 20

// textWriter writes the text form of the binary log written to it.
type textWriter struct {
	w io.Writer
	// inHeader is set until the header line's newline has passed.
	inHeader bool
	started  bool
}

// NewTextWriter returns a writer that writes to w the text form of the
// binary log written to it, line by line as it comes, so that a live log
// can be read as it grows. Close does not close w.
func NewTextWriter(w io.Writer) io.WriteCloser { return &textWriter{w: w, inHeader: true} }

func (t *textWriter) Write(p []byte) (int, error) {
	n := len(p)
	var out bytes.Buffer
	if !t.started {
		out.WriteString(TextMagic + "\n")
		t.started = true
	}
	if t.inHeader {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			out.Write(p)
			p = nil
		} else {
			out.Write(p[:i+1])
			p = p[i+1:]
			t.inHeader = false
		}
	}
	for len(p) > 0 {
		c := min(len(p), textChunk)
		out.WriteString(base64.StdEncoding.EncodeToString(p[:c]))
		out.WriteByte('\n')
		p = p[c:]
	}
	if _, err := t.w.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return n, nil
}

func (t *textWriter) Close() error { return nil }

// criLine is a line of containerd's CRI log file: its time, stream and
// tag (F a full line, P a part of one), then the content.
var criLine = regexp.MustCompile(`^\d{4}-\d\d-\d\dT[0-9:.]+(?:Z|[+-]\d\d:\d\d) (stdout|stderr) ([FP]) `)

// unwrap returns the binary log that in holds in any of its forms: the
// binary one as it is, the text form, or either inside a CRI log file
// (whose stdout lines it reads, without their stamps, and whose stderr
// lines, the static error line, it skips).
func unwrap(in io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(in, 64<<10)
	head, _ := br.Peek(64)
	var lines lineSource
	switch {
	case criLine.Match(head):
		lines = &criLines{br: br}
	case bytes.HasPrefix(head, []byte(TextMagic+"\n")):
		lines = &plainLines{br: br}
	default:
		return br, nil
	}
	first, _, err := lines.next()
	if err == io.EOF {
		return nil, fmt.Errorf("%w: empty", ErrFormat)
	}
	if err != nil {
		return nil, err
	}
	if string(first) != TextMagic {
		// A CRI log of a binary log: its lines as CRI kept them, which
		// is the log unless CRI dropped a '\r' (the frames then fail).
		return &lineBytes{lines: lines, pending: append(first, '\n'), raw: true}, nil
	}
	return &lineBytes{lines: lines}, nil
}

// lineSource gives a log's lines without their newlines, and whether the
// line had one; io.EOF after the last.
type lineSource interface {
	next() (line []byte, full bool, err error)
}

type plainLines struct{ br *bufio.Reader }

func (p *plainLines) next() ([]byte, bool, error) { return readTextLine(p.br) }

// criLines gives the content of a CRI log file's stdout lines, a line's
// parts joined.
type criLines struct{ br *bufio.Reader }

func (c *criLines) next() ([]byte, bool, error) {
	var line []byte
	for {
		l, _, err := readTextLine(c.br)
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				return line, false, nil
			}
			return nil, false, err
		}
		m := criLine.FindSubmatchIndex(l)
		if m == nil {
			return nil, false, fmt.Errorf("%w: a line of the CRI log file is not time, stream, tag and content", ErrFormat)
		}
		if string(l[m[2]:m[3]]) != "stdout" {
			continue
		}
		line = append(line, l[m[1]:]...)
		if len(line) > maxTextLine {
			return nil, false, fmt.Errorf("%w: a line longer than %d bytes", ErrFormat, maxTextLine)
		}
		if l[m[4]] == 'F' {
			return line, true, nil
		}
	}
}

// readTextLine reads a line of at most maxTextLine bytes, without its
// newline; a last line without one is given with full false.
func readTextLine(br *bufio.Reader) ([]byte, bool, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxTextLine+1 {
			return nil, false, fmt.Errorf("%w: a line longer than %d bytes", ErrFormat, maxTextLine)
		}
		switch err {
		case nil:
			return line[:len(line)-1], true, nil
		case bufio.ErrBufferFull:
			continue
		case io.EOF:
			if len(line) == 0 {
				return nil, false, io.EOF
			}
			return line, false, nil
		default:
			return nil, false, err
		}
	}
}

// lineBytes is the binary log of a text form's lines: the header line as
// it is, every later line base64-decoded; with raw, the lines as they are,
// each with its newline.
type lineBytes struct {
	lines   lineSource
	pending []byte
	raw     bool
	header  bool // set once the header line is out
}

func (l *lineBytes) Read(p []byte) (int, error) {
	for len(l.pending) == 0 {
		line, full, err := l.lines.next()
		if err != nil {
			return 0, err
		}
		switch {
		case l.raw:
			if full {
				line = append(line, '\n')
			}
			l.pending = line
		case !full:
			// A line cut short: the log ends before it, as a binary
			// log whose last write was cut (the reader reports it
			// truncated).
			return 0, io.EOF
		case !l.header:
			l.pending, l.header = append(line, '\n'), true
		default:
			b, err := base64.StdEncoding.DecodeString(string(line))
			if err != nil {
				return 0, fmt.Errorf("%w: a line of the text form is not base64", ErrFormat)
			}
			l.pending = b
		}
	}
	n := copy(p, l.pending)
	l.pending = l.pending[n:]
	return n, nil
}
