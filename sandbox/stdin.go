package sandbox

import (
	"io"
	"sync"
	"time"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

// stdin reads the host's stdin on a goroutine, so that a guest blocked in
// fd_read or poll_oneoff on an idle stdin wakes when its run ends. The reading
// goroutine starts on the guest's first read or poll.
type stdin struct {
	end  *ending
	src  io.Reader
	once sync.Once
	ch   chan chunk

	// Owned by the guest's thread (wazero calls a module's host functions
	// from one goroutine).
	pending []byte
	err     error
}

type chunk struct {
	data []byte
	err  error
}

func newStdin(end *ending, src io.Reader) *stdin {
	return &stdin{end: end, src: src, ch: make(chan chunk)}
}

func (s *stdin) start() {
	s.once.Do(func() {
		go func() {
			for {
				buf := make([]byte, 32<<10)
				n, err := s.src.Read(buf)
				select {
				case s.ch <- chunk{buf[:n], err}:
				case <-s.end.ctx.Done():
					return
				}
				if err != nil {
					return
				}
			}
		}()
	})
}

// fill waits up to timeout (forever if negative) for input. It reports
// whether data or an error (EOF) is ready.
func (s *stdin) fill(timeout time.Duration) (bool, experimentalsys.Errno) {
	if s.end.over() {
		return false, experimentalsys.EINTR
	}
	if len(s.pending) > 0 || s.err != nil {
		return true, 0
	}
	s.start()
	var after <-chan time.Time
	if timeout >= 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		after = t.C
	}
	select {
	case c := <-s.ch:
		s.pending, s.err = c.data, c.err
		return true, 0
	case <-after:
		return false, 0
	case <-s.end.ctx.Done():
		s.end.over()
		return false, experimentalsys.EINTR
	}
}

// Read implements io.Reader for wazero's stdin.
func (s *stdin) Read(p []byte) (int, error) {
	for len(s.pending) == 0 && s.err == nil {
		if _, errno := s.fill(-1); errno != 0 {
			return 0, errno
		}
	}
	if len(s.pending) > 0 {
		n := copy(p, s.pending)
		s.pending = s.pending[n:]
		return n, nil
	}
	return 0, s.err
}

// Poll implements experimentalsys.Pollable, so that poll_oneoff on stdin
// waits for real input instead of assuming it is always ready.
func (s *stdin) Poll(flag experimentalsys.Pflag, timeoutMillis int32) (bool, experimentalsys.Errno) {
	if flag != experimentalsys.POLLIN {
		return false, experimentalsys.ENOTSUP
	}
	return s.fill(time.Duration(timeoutMillis) * time.Millisecond)
}
