package broker

import (
	"errors"
	"fmt"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestGroupCommit: decisions that wait while a transaction is on the disk
// are written together in the next one, each answered only once it is
// durable; a decision whose writing fails fails alone, and the others of
// its group are still written and answered.
func TestGroupCommit(t *testing.T) {
	for _, failing := range []int{-1, 5} {
		t.Run(fmt.Sprintf("failing=%d", failing), func(t *testing.T) {
			b := newBroker(t)
			// Hold the database's one writer, so that every decision
			// below waits for it.
			held, hold := make(chan struct{}), make(chan struct{})
			go b.s.db.Update(func(*bolt.Tx) error { close(held); <-hold; return nil })
			<-held
			const n = 16
			errs := make([]chan error, n)
			for i := range n {
				errs[i] = make(chan error, 1)
				go func() {
					errs[i] <- b.s.commit(func(tx *bolt.Tx) error {
						if i == failing {
							return errors.New("this decision cannot be written")
						}
						return tx.Bucket(bucketMeta).Put(fmt.Appendf(nil, "group-test-%d", i), []byte{1})
					})
				}()
			}
			for b.s.commits.pending.Load() < n {
				time.Sleep(time.Millisecond)
			}
			time.Sleep(20 * time.Millisecond) // every one at the queue
			groups := b.s.commits.groups.Load()
			close(hold)
			for i := range n {
				err := <-errs[i]
				if (i == failing) != (err != nil) {
					t.Errorf("decision %d: %v", i, err)
				}
			}
			written := b.s.commits.groups.Load() - groups
			if failing < 0 && written > 2 {
				t.Errorf("%d decisions waiting took %d transactions, want at most 2", n, written)
			}
			b.s.db.View(func(tx *bolt.Tx) error {
				for i := range n {
					if got := tx.Bucket(bucketMeta).Get(fmt.Appendf(nil, "group-test-%d", i)) != nil; got != (i != failing) {
						t.Errorf("decision %d written: %v", i, got)
					}
				}
				return nil
			})
		})
	}
}

// TestCommitAfterClose: a decision after Close is refused, not hung.
func TestCommitAfterClose(t *testing.T) {
	b := newBroker(t)
	b.s.Close()
	done := make(chan error, 1)
	go func() { done <- b.s.commit(func(*bolt.Tx) error { return nil }) }()
	select {
	case err := <-done:
		if !errors.Is(err, errClosed) {
			t.Errorf("commit after close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("commit after close hung")
	}
}
