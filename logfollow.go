package ampoule

import (
	"context"
	"io"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
)

// followPoll is how often Follow looks for more of a live log.
const followPoll = 200 * time.Millisecond

// Follow reads r as tail -f does: at its end it waits for more, until ctx
// ends, when it returns io.EOF. It lets OpenLog read a log its run is
// still writing, up to the end record.
func Follow(ctx context.Context, r io.Reader) io.Reader { return &followReader{ctx: ctx, r: r} }

type followReader struct {
	ctx context.Context
	r   io.Reader
}

func (f *followReader) Read(p []byte) (int, error) {
	for {
		n, err := f.r.Read(p)
		if n > 0 || err != io.EOF {
			return n, err
		}
		select {
		case <-f.ctx.Done():
			return 0, io.EOF
		case <-time.After(followPoll):
		}
	}
}

// End checks, once Next has returned io.EOF, that nothing follows the
// log's end record: bytes after it are E1018 log-tampered, a record after
// it E1016 log-malformed. (A followed log is not checked: it would wait
// forever.)
func (l *LogReader) End() error {
	_, err := l.Next()
	switch err {
	case io.EOF:
		return nil
	case nil:
		return errcode.Errorf(errcode.LogMalformed, "the log goes on after its end record")
	}
	return err
}
