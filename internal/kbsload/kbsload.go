// Package kbsload drives a broker's KBS endpoints with whole cycles (auth,
// attest with simulator evidence, one resource) from parallel clients for
// a bounded time, and says what they got: cycles, errors, latencies and
// the process's CPU time. The load command (bench/cmd/kbsload) and the
// broker's load benchmark share it.
package kbsload

import (
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/ampoule-run/ampoule/broker/kbs"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/sim"
)

// Config is one load run.
type Config struct {
	// URL is the broker's base URL; Key its Ed25519 key, which every
	// resource answer must be signed with.
	URL string
	Key ed25519.PublicKey
	// Sim makes the evidence; the broker's policy must accept its key and
	// Measurement under Profile.
	Sim         *sim.Backend
	Measurement [48]byte
	Profile     string
	// Resource is the path each cycle fetches.
	Resource string
	// Clients run cycles back to back, for Duration or until Cycles
	// cycles are done between them (whichever is first; zero is no bound,
	// but one of the two must be set).
	Clients  int
	Duration time.Duration
	Cycles   int
}

// Result is what a load run measured.
type Result struct {
	Cycles int
	Errors int
	// FirstError is the first error a cycle met, if any.
	FirstError error
	Elapsed    time.Duration
	// Latencies of the cycles that succeeded, sorted.
	Latencies []time.Duration
	// CPU is the process's user and system time over the run: the
	// clients' and, when the broker is served in this process, its own.
	CPU time.Duration
}

// PerSecond is the cycles that succeeded per second of the run.
func (r *Result) PerSecond() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Cycles) / r.Elapsed.Seconds()
}

// Quantile is the latency at q (0 to 1) of the cycles that succeeded.
func (r *Result) Quantile(q float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(q * float64(len(r.Latencies)))
	return r.Latencies[min(i, len(r.Latencies)-1)]
}

// CPUPerCycle is the process's CPU time per cycle that succeeded.
func (r *Result) CPUPerCycle() time.Duration {
	if r.Cycles == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Cycles)
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Run runs the load c describes.
func Run(ctx context.Context, c Config) (*Result, error) {
	if c.Clients < 1 || (c.Duration <= 0 && c.Cycles <= 0) || c.Sim == nil || c.URL == "" {
		return nil, errors.New("kbsload: a load needs a URL, a simulator, clients and a duration or a number of cycles")
	}
	if c.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.Duration)
		defer cancel()
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = c.Clients
	defer tr.CloseIdleConnections()
	client := &kbs.Client{URL: c.URL, Key: c.Key, HTTP: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
	var (
		mu    sync.Mutex
		res   Result
		left  = c.Cycles
		wg    sync.WaitGroup
		start = time.Now()
		cpu0  = cpuTime()
	)
	take := func() bool {
		mu.Lock()
		defer mu.Unlock()
		if c.Cycles <= 0 {
			return true
		}
		if left == 0 {
			return false
		}
		left--
		return true
	}
	for range c.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && take() {
				t0 := time.Now()
				err := cycle(ctx, client, &c)
				d := time.Since(t0)
				if err != nil && ctx.Err() != nil {
					// Cut off by the end of the run, not failed.
					return
				}
				mu.Lock()
				if err != nil {
					res.Errors++
					if res.FirstError == nil {
						res.FirstError = err
					}
				} else {
					res.Cycles++
					res.Latencies = append(res.Latencies, d)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	res.CPU = cpuTime() - cpu0
	slices.Sort(res.Latencies)
	return &res, nil
}

// cycle is one run's exchange: a fresh key, auth, the simulator's
// evidence bound to the session, attest, and the resource opened.
func cycle(ctx context.Context, client *kbs.Client, c *Config) error {
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	sess, err := client.Auth(ctx, "ampoule-sim", key)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	pub, nonce := key.PublicKey().Bytes(), sess.ReportNonce()
	ev, err := c.Sim.Attest(ctx, tee.ReportData(c.Measurement, pub, nonce))
	if err != nil {
		return err
	}
	// The envelope says when the statement was made, as a run's does;
	// the load reads it from the statement it just had made (checking
	// its signature is the broker's work, not the clients').
	var stmt struct {
		Issued time.Time `json:"issued"`
	}
	if err := json.Unmarshal(ev.Raw, &stmt); err != nil || stmt.Issued.IsZero() {
		return fmt.Errorf("the simulator's statement names no issue time: %v", err)
	}
	issued := stmt.Issued
	env := &tee.Envelope{Version: tee.EnvelopeVersion, Kind: sim.Kind, Insecure: true, Evidence: ev.Raw, Collateral: ev.Collateral,
		Measurement: hex.EncodeToString(c.Measurement[:]), Profile: c.Profile, RuntimeKey: pub, Nonce: nonce, Issued: issued}
	primary, err := kbs.AmpoulePrimary(env, nil)
	if err != nil {
		return err
	}
	if _, err := sess.Attest(ctx, primary); err != nil {
		return fmt.Errorf("attest: %w", err)
	}
	v, err := sess.Resource(ctx, c.Resource)
	if err != nil {
		return fmt.Errorf("resource: %w", err)
	}
	if len(v) == 0 {
		return errors.New("resource: empty")
	}
	return nil
}
