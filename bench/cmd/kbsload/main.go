// Command kbsload is the broker's load test: a broker over a fresh bbolt
// file, served on loopback in this process, and clients running whole KBS
// cycles (auth, attest with simulator evidence, the sealing key as a JWE)
// back to back for a bounded time. It prints cycles/s, p50, p99, errors,
// the process's CPU time per 1,000 cycles (rusage: the broker's and the
// clients', whatever else the machine runs) and the cycles/s that CPU
// cost allows on the machine's idle cores, with the load average before
// and after. It exits 1 on any error.
//
//	go run ./bench/cmd/kbsload [-clients 16] [-duration 60s]
package main

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/broker"
	"github.com/ampoule-run/ampoule/internal/kbsload"
	"github.com/ampoule-run/ampoule/tee/sim"
)

func main() {
	clients := flag.Int("clients", 16, "clients running cycles back to back")
	duration := flag.Duration("duration", 60*time.Second, "how long the load runs (at most 10m)")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the load to this file")
	flag.Parse()
	if *duration <= 0 || *duration > 10*time.Minute || *clients < 1 || *clients > 1024 {
		fail(fmt.Errorf("-duration must be in (0, 10m] and -clients in [1, 1024]"))
	}
	dir, err := os.MkdirTemp("", "kbsload-")
	check(err)
	defer os.RemoveAll(dir)

	_, simKey, err := ed25519.GenerateKey(rand.Reader)
	check(err)
	backend := sim.New(simKey)
	var m [48]byte
	rand.Read(m[:])
	policy, err := attest.ParsePolicy([]byte(fmt.Sprintf("measurements = [%q]\nprofiles = [\"staging\"]\nbackends = [\"sim\"]\nallow_insecure = true\nsim_keys = [%q]\n",
		hex.EncodeToString(m[:]), hex.EncodeToString(backend.PublicKey()))))
	check(err)
	s, err := broker.Open(filepath.Join(dir, "broker.db"), policy)
	check(err)
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	check(err)
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()

	if *profile != "" {
		f, err := os.Create(*profile)
		check(err)
		check(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}
	load0 := loadavg()
	res, err := kbsload.Run(context.Background(), kbsload.Config{URL: "http://" + ln.Addr().String(), Key: s.PublicKey(), Sim: backend,
		Measurement: m, Profile: "staging", Resource: broker.SealingKeyResource, Clients: *clients, Duration: *duration})
	check(err)
	load1 := loadavg()
	perK := res.CPUPerCycle() * 1000
	fmt.Printf("clients %d, %s, GOMAXPROCS %d, load average %s before, %s after\n", *clients, res.Elapsed.Round(time.Millisecond), runtime.GOMAXPROCS(0), load0, load1)
	fmt.Printf("cycles %d (%.0f/s), errors %d, p50 %s, p99 %s\n", res.Cycles, res.PerSecond(), res.Errors, res.Quantile(0.50).Round(10*time.Microsecond), res.Quantile(0.99).Round(10*time.Microsecond))
	if res.Cycles > 0 {
		fmt.Printf("CPU %.2f s per 1,000 cycles (broker and clients), so at most %.0f cycles/s on %d idle cores\n", perK.Seconds(), float64(runtime.NumCPU())/res.CPUPerCycle().Seconds(), runtime.NumCPU())
	}
	if res.Errors > 0 {
		fmt.Fprintf(os.Stderr, "kbsload: first error: %v\n", res.FirstError)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func check(err error) {
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "kbsload: %v\n", err)
	os.Exit(1)
}
