package broker

import (
	"errors"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
)

// Group commit. Every decision is written (nonce used, audit record) in a
// transaction that is fsynced before the decision is answered; one fsync
// per decision bounded the broker by the disk's fsync latency. Decisions
// are queued to one committer instead, which writes everything queued
// while its previous commit was on the disk in one transaction: a lone
// decision waits for nobody (bbolt's own Batch waits MaxBatchDelay for
// company), and under load a group grows to what arrived during one
// commit. A decision is answered only once its group is durable.

// maxGroup bounds the decisions of one transaction.
const maxGroup = 256

// errClosed: the broker closed before the decision was committed, so it
// is not answered.
var errClosed = errors.New("the broker is closing")

type commitReq struct {
	fn   func(*bolt.Tx) error
	done chan error
}

// committer writes the queued decisions of a Server.
type committer struct {
	// pending counts the decisions handed to commit and not yet
	// answered, groups the transactions written (tests read both).
	pending atomic.Int64
	groups  atomic.Int64
	queue   chan *commitReq
	stop    chan struct{}
	stopped chan struct{}
}

func newCommitter() *committer {
	return &committer{queue: make(chan *commitReq), stop: make(chan struct{}), stopped: make(chan struct{})}
}

// commit runs fn in a write transaction shared with the decisions queued
// with it, and returns once that transaction is durable (nil) or has
// failed. fn may run more than once (a group whose transaction failed is
// written again decision by decision, so that one decision's error fails
// it alone), so it must start from its inputs each time, as bbolt's Batch
// asks too.
func (s *Server) commit(fn func(*bolt.Tx) error) error {
	r := &commitReq{fn: fn, done: make(chan error, 1)}
	s.commits.pending.Add(1)
	defer s.commits.pending.Add(-1)
	select {
	case s.commits.queue <- r:
	case <-s.commits.stop:
		return errClosed
	}
	return <-r.done
}

// runCommits is the committer: it takes a decision, every other one
// waiting at that moment (up to maxGroup), and commits them together,
// until stopped.
func (s *Server) runCommits() {
	c := s.commits
	defer close(c.stopped)
	group := make([]*commitReq, 0, maxGroup)
	for {
		select {
		case r := <-c.queue:
			group = append(group[:0], r)
		case <-c.stop:
			return
		}
	fill:
		for len(group) < maxGroup {
			select {
			case r := <-c.queue:
				group = append(group, r)
			default:
				break fill
			}
		}
		s.commitGroup(group)
		clear(group)
	}
}

func (s *Server) commitGroup(group []*commitReq) {
	s.commits.groups.Add(1)
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, r := range group {
			if err := r.fn(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil || len(group) == 1 {
		for _, r := range group {
			r.done <- err
		}
		return
	}
	// The group failed: each decision again on its own, so that only
	// those whose own transaction fails are not answered.
	for _, r := range group {
		r.done <- s.db.Update(r.fn)
	}
}

// stopCommits ends the committer once its group in progress is written;
// decisions not taken yet get errClosed.
func (s *Server) stopCommits() {
	s.closeOnce.Do(func() {
		close(s.commits.stop)
		<-s.commits.stopped
	})
}
