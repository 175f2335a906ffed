package broker

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
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

// TestOneNonceOneRelease: requests racing with one nonce get at most one
// release between them: the nonce is used in the transaction that answers,
// not only checked before the evidence is judged.
func TestOneNonceOneRelease(t *testing.T) {
	b := newBroker(t)
	// A race lost by chance in one round is won in another: several
	// rounds, each with a nonce of its own.
	for round := range 8 {
		nonce, err := b.client.Challenge(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		env, _ := b.evidence(t, measurementA, nonce)
		body := mustJSON(t, ReleaseRequest{Evidence: mustJSON(t, env), Secrets: []string{SealingKey}})
		const n = 16
		codes := make(chan int, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				resp, err := http.Post(b.srv.URL+ReleasePath, "application/json", bytes.NewReader(body))
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				codes <- resp.StatusCode
			}()
		}
		close(start)
		wg.Wait()
		close(codes)
		released := 0
		for c := range codes {
			if c == http.StatusOK {
				released++
			}
		}
		if released != 1 {
			t.Fatalf("round %d: %d of %d racing requests with one nonce were answered with the secret, want 1", round, released, n)
		}
	}
}
