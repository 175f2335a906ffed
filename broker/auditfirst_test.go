package broker

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestUnrecordedRefusalIsNotAnswered: a decision is answered only once its
// audit record is in the same transaction. With the audit budget's state
// damaged, recording a refusal fails while the database itself still
// writes, and the answer is a 500 that released nothing, never the refusal
// as if it had been recorded.
func TestUnrecordedRefusalIsNotAnswered(t *testing.T) {
	b := newBroker(t)
	if err := b.s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(stateKey, []byte("{damaged"))
	}); err != nil {
		t.Fatal(err)
	}
	// A nonce this broker never issued: refused, and the refusal recorded.
	env, _ := b.evidence(t, measurementA, bytes.Repeat([]byte{1}, nonceSize))
	body := mustJSON(t, ReleaseRequest{Evidence: mustJSON(t, env), Secrets: []string{SealingKey}})
	resp, err := http.Post(b.srv.URL+ReleasePath, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || !bytes.Contains(got, []byte("released nothing")) {
		t.Errorf("a refusal that could not be recorded was answered: %s %s", resp.Status, got)
	}
	if records, err := b.s.Audit(); err == nil && len(records) != 0 {
		t.Errorf("%d audit records", len(records))
	}
}
