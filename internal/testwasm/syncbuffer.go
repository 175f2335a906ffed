package testwasm

import (
	"bytes"
	"sync"
)

// SyncBuffer is a bytes.Buffer that a test may read while another
// goroutine writes it: the goroutine exec starts to copy a child's output,
// a run's logger, a guest's stream. Its zero value is ready: the mutex
// needs no making, so the first Write and the first read cannot race to
// make it.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is what has been written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Len is how many bytes have been written so far.
func (b *SyncBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}
