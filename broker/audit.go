package broker

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// AuditRecord is one decision of the broker, or, when Aggregate is set,
// the count of the refused decisions of one minute beyond the audit
// budget's rate.
type AuditRecord struct {
	Time        time.Time `json:"time"`
	Remote      string    `json:"remote"`
	Kind        string    `json:"kind"`
	Profile     string    `json:"profile"`
	Measurement string    `json:"measurement"`
	// Bundle is the bundle's name and version, if the request named it,
	// and whether they are bound to the measurement or only claimed.
	Bundle   *AuditBundle `json:"bundle,omitempty"`
	Status   string       `json:"status"`
	Reasons  []string     `json:"reasons"`
	Asked    []string     `json:"asked"`
	Released []string     `json:"released"`
	// Aggregate, if set, stands for Aggregate.Count refused decisions
	// from Time to Aggregate.Until; the fields above are then empty.
	Aggregate *AuditAggregate `json:"aggregate,omitempty"`
}

// AuditAggregate counts refused decisions beyond the audit budget's rate:
// each is counted, by status, reason, remote and measurement (up to
// aggregateDistinct distinct values each; Other counts the values beyond).
type AuditAggregate struct {
	Count        int            `json:"count"`
	Until        time.Time      `json:"until"`
	Statuses     map[string]int `json:"statuses"`
	Reasons      map[string]int `json:"reasons"`
	Remotes      map[string]int `json:"remotes"`
	Measurements map[string]int `json:"measurements"`
	Other        int            `json:"other"`
}

// AuditBudget bounds what refused decisions take of the database. A
// decision that released anything is always recorded on its own and never
// pruned; refused ones within the rate are recorded one by one, the rest
// counted in one aggregate record per minute; refused records (both kinds)
// older than Retention, or beyond MaxBytes, oldest first, are pruned.
type AuditBudget struct {
	// Burst and PerSecond are a token bucket of refused decisions
	// recorded one by one.
	Burst     float64
	PerSecond float64
	// MaxBytes bounds the encoded refused records kept.
	MaxBytes int
	// Retention is how long refused records are kept.
	Retention time.Duration
}

// DefaultBudget is the audit budget Open sets: 100 refused decisions at
// once and one a second recorded one by one, 4 MiB and 90 days of refused
// records.
var DefaultBudget = AuditBudget{Burst: 100, PerSecond: 1, MaxBytes: 4 << 20, Retention: 90 * 24 * time.Hour}

// Bounds of one record's fields, against evidence made to fill the trail.
const (
	maxReasons        = 32
	maxReasonBytes    = 512
	aggregateDistinct = 16
)

// auditState is the audit budget's state, kept in bucketMeta.
type auditState struct {
	Tokens float64   `json:"tokens"`
	Last   time.Time `json:"last"`
	// Bytes is the encoded size of the refused records kept.
	Bytes int `json:"bytes"`
	// AggSeq is the aggregate record of the minute AggWindow, if any.
	AggSeq    uint64    `json:"agg_seq"`
	AggWindow time.Time `json:"agg_window"`
}

var stateKey = []byte("audit-state")

func loadState(tx *bolt.Tx, budget AuditBudget) (auditState, error) {
	st := auditState{Tokens: budget.Burst}
	if v := tx.Bucket(bucketMeta).Get(stateKey); v != nil {
		if err := json.Unmarshal(v, &st); err != nil {
			return st, errors.New("the audit budget's state is damaged")
		}
	}
	return st, nil
}

func saveState(tx *bolt.Tx, st auditState) error {
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketMeta).Put(stateKey, data)
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(nil, seq) }

// truncate cuts s to at most n bytes, on a character boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// bounded limits a record's fields the request could make long.
func bounded(rec AuditRecord) AuditRecord {
	rec.Remote = truncate(rec.Remote, 64)
	rec.Measurement = truncate(rec.Measurement, 96)
	if len(rec.Reasons) > maxReasons {
		rec.Reasons = append(rec.Reasons[:maxReasons:maxReasons], "and more reasons")
	}
	reasons := make([]string, len(rec.Reasons))
	for i, r := range rec.Reasons {
		reasons[i] = truncate(r, maxReasonBytes)
	}
	rec.Reasons = reasons
	return rec
}

// record writes rec into the audit trail within tx, as the budget allows.
func (s *Server) record(tx *bolt.Tx, rec AuditRecord) error {
	rec = bounded(rec)
	audit, refusals := tx.Bucket(bucketAudit), tx.Bucket(bucketRefusals)
	if len(rec.Released) > 0 {
		data, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		seq, err := audit.NextSequence()
		if err != nil {
			return err
		}
		return audit.Put(seqKey(seq), data)
	}
	st, err := loadState(tx, s.Budget)
	if err != nil {
		return err
	}
	now := rec.Time
	if err := pruneOlder(refusals, &st, now.Add(-s.Budget.Retention)); err != nil {
		return err
	}
	if elapsed := now.Sub(st.Last); elapsed > 0 {
		st.Tokens = min(s.Budget.Burst, st.Tokens+elapsed.Seconds()*s.Budget.PerSecond)
		st.Last = now
	}
	var key, data []byte
	old := 0
	if st.Tokens >= 1 {
		st.Tokens--
		seq, err := audit.NextSequence()
		if err != nil {
			return err
		}
		key = seqKey(seq)
		if data, err = json.Marshal(rec); err != nil {
			return err
		}
	} else {
		window := now.UTC().Truncate(time.Minute)
		var agg AuditRecord
		if st.AggSeq != 0 && st.AggWindow.Equal(window) {
			if v := refusals.Get(seqKey(st.AggSeq)); v != nil {
				if err := json.Unmarshal(v, &agg); err != nil || agg.Aggregate == nil {
					return errors.New("an aggregate audit record is damaged")
				}
				old = len(v)
			}
		}
		if agg.Aggregate == nil {
			seq, err := audit.NextSequence()
			if err != nil {
				return err
			}
			st.AggSeq, st.AggWindow = seq, window
			agg = AuditRecord{Time: window, Reasons: []string{}, Asked: []string{}, Released: []string{}, Aggregate: &AuditAggregate{
				Statuses: map[string]int{}, Reasons: map[string]int{}, Remotes: map[string]int{}, Measurements: map[string]int{}}}
		}
		a := agg.Aggregate
		a.Count++
		a.Until = rec.Time
		a.Other += countIn(a.Statuses, rec.Status) + countIn(a.Remotes, rec.Remote) + countIn(a.Measurements, rec.Measurement)
		for _, r := range rec.Reasons {
			a.Other += countIn(a.Reasons, truncate(r, 200))
		}
		key = seqKey(st.AggSeq)
		if data, err = json.Marshal(agg); err != nil {
			return err
		}
	}
	// Room for the record: the oldest refused records go first.
	st.Bytes -= old
	for st.Bytes+len(data) > s.Budget.MaxBytes {
		c := refusals.Cursor()
		k, v := c.First()
		if k == nil || bytes.Equal(k, key) {
			break
		}
		st.Bytes -= len(v)
		if err := c.Delete(); err != nil {
			return err
		}
	}
	if err := refusals.Put(key, data); err != nil {
		return err
	}
	st.Bytes += len(data)
	return saveState(tx, st)
}

// countIn counts v in m if there is room for it: 1 if there is not.
func countIn(m map[string]int, v string) int {
	if _, ok := m[v]; !ok && len(m) >= aggregateDistinct {
		return 1
	}
	m[v]++
	return 0
}

// pruneOlder removes the refused records from before cutoff, oldest
// first, a bounded number per call.
func pruneOlder(refusals *bolt.Bucket, st *auditState, cutoff time.Time) error {
	c := refusals.Cursor()
	for n := 0; n < 256; n++ {
		k, v := c.First()
		if k == nil {
			return nil
		}
		var rec AuditRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return errors.New("a refused audit record is damaged")
		}
		t := rec.Time
		if rec.Aggregate != nil {
			t = rec.Aggregate.Until
		}
		if !t.Before(cutoff) {
			return nil
		}
		st.Bytes -= len(v)
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

var migratedKey = []byte("refusals-apart")

// migrateRefusals moves refused records a broker kept beside its releases
// (before the audit budget) into their own bucket, once.
func migrateRefusals(tx *bolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta.Get(migratedKey) != nil {
		return nil
	}
	audit, refusals := tx.Bucket(bucketAudit), tx.Bucket(bucketRefusals)
	var move [][2][]byte
	err := audit.ForEach(func(k, v []byte) error {
		var rec AuditRecord
		if err := json.Unmarshal(v, &rec); err != nil {
			return errors.New("an audit record is damaged")
		}
		if len(rec.Released) == 0 {
			move = append(move, [2][]byte{append([]byte(nil), k...), append([]byte(nil), v...)})
		}
		return nil
	})
	if err != nil {
		return err
	}
	st := auditState{Tokens: DefaultBudget.Burst}
	for _, kv := range move {
		if err := refusals.Put(kv[0], kv[1]); err != nil {
			return err
		}
		if err := audit.Delete(kv[0]); err != nil {
			return err
		}
		st.Bytes += len(kv[1])
	}
	if err := saveState(tx, st); err != nil {
		return err
	}
	return meta.Put(migratedKey, []byte{1})
}

// Audit returns every decision kept, oldest first: each that released
// anything, and the refused ones (one by one or aggregated) the budget
// kept.
func (s *Server) Audit() ([]AuditRecord, error) {
	var out []AuditRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		a, r := tx.Bucket(bucketAudit).Cursor(), tx.Bucket(bucketRefusals).Cursor()
		ak, av := a.First()
		rk, rv := r.First()
		for ak != nil || rk != nil {
			var v []byte
			if rk == nil || (ak != nil && bytes.Compare(ak, rk) < 0) {
				v = av
				ak, av = a.Next()
			} else {
				v = rv
				rk, rv = r.Next()
			}
			var rec AuditRecord
			if err := json.Unmarshal(v, &rec); err != nil {
				return errors.New("an audit record is damaged")
			}
			out = append(out, rec)
		}
		return nil
	})
	return out, err
}

// WriteText writes the record for a person, as launch broker audit prints
// it: a decision on one line and its reasons beneath; an aggregate of the
// refusals beyond the budget with its counts, each sorted by value.
func (r AuditRecord) WriteText(w io.Writer) {
	if a := r.Aggregate; a != nil {
		fmt.Fprintf(w, "%s %d refused decisions beyond the audit budget, until %s\n", r.Time.Format(time.RFC3339), a.Count, a.Until.Format(time.RFC3339))
		for _, m := range []struct {
			what   string
			counts map[string]int
		}{{"status", a.Statuses}, {"remote", a.Remotes}, {"measurement", a.Measurements}, {"reason", a.Reasons}} {
			for _, k := range slices.Sorted(maps.Keys(m.counts)) {
				fmt.Fprintf(w, "    %s %s: %d\n", m.what, k, m.counts[k])
			}
		}
		if a.Other > 0 {
			fmt.Fprintf(w, "    and %d values beyond those kept\n", a.Other)
		}
		return
	}
	fmt.Fprintf(w, "%s %-15s %-8s %-10s %s %s %s released=[%s]\n", r.Time.Format(time.RFC3339), r.Status, r.Kind, r.Profile, r.Bundle, r.Measurement, r.Remote, strings.Join(r.Released, ","))
	for _, reason := range r.Reasons {
		fmt.Fprintf(w, "    - %s\n", reason)
	}
}
