// Command kbsload is the broker's load test: clients running whole KBS
// cycles (auth, attest with simulator evidence, the sealing key as a JWE)
// back to back for a bounded time against a broker over a fresh bbolt
// file on loopback. By default the broker is served in this process; with
// -launch it is `launch broker serve`, started from the binary given, as
// its own process, so that its CPU time (its rusage, read when it exits)
// is apart from the clients'. It prints cycles/s, p50, p99, errors, the
// CPU time per 1,000 cycles (broker and clients apart with -launch), the
// cycles/s that CPU cost allows on the machine's idle cores, and the load
// average before and after. It exits 1 on any error.
//
//	go run ./bench/cmd/kbsload [-clients 16] [-duration 60s] [-launch bin/launch] [-cpuprofile FILE]
package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/broker"
	"github.com/ampoule-run/ampoule/internal/kbsload"
	"github.com/ampoule-run/ampoule/tee/sim"
)

func main() {
	clients := flag.Int("clients", 16, "clients running cycles back to back")
	duration := flag.Duration("duration", 60*time.Second, "how long the load runs (at most 10m)")
	profile := flag.String("cpuprofile", "", "write a CPU profile of this process (the clients, and the broker unless -launch) to this file")
	launch := flag.String("launch", "", "serve the broker with this launch binary's `broker serve`, as a process of its own")
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
	policyText := fmt.Sprintf("measurements = [%q]\nprofiles = [\"staging\"]\nbackends = [\"sim\"]\nallow_insecure = true\nsim_keys = [%q]\n",
		hex.EncodeToString(m[:]), hex.EncodeToString(backend.PublicKey()))
	var b *served
	if *launch != "" {
		b, err = serveProcess(*launch, dir, policyText)
	} else {
		b, err = serveHere(dir, policyText)
	}
	check(err)

	if *profile != "" {
		f, err := os.Create(*profile)
		check(err)
		check(pprof.StartCPUProfile(f))
	}
	load0 := loadavg()
	res, err := kbsload.Run(context.Background(), kbsload.Config{URL: b.url, Key: b.key, Sim: backend,
		Measurement: m, Profile: "staging", Resource: broker.SealingKeyResource, Clients: *clients, Duration: *duration})
	load1 := loadavg()
	pprof.StopCPUProfile()
	brokerCPU, stopErr := b.stop()
	check(err)
	check(stopErr)
	where := "in this process"
	if *launch != "" {
		where = "its own process"
	}
	fmt.Printf("clients %d, %s, broker %s, GOMAXPROCS %d, load average %s before, %s after\n", *clients, res.Elapsed.Round(time.Millisecond), where, runtime.GOMAXPROCS(0), load0, load1)
	fmt.Printf("cycles %d (%.0f/s), errors %d, p50 %s, p99 %s\n", res.Cycles, res.PerSecond(), res.Errors, res.Quantile(0.50).Round(10*time.Microsecond), res.Quantile(0.99).Round(10*time.Microsecond))
	if res.Cycles > 0 {
		perCycle := func(d time.Duration) time.Duration { return d / time.Duration(res.Cycles) }
		cores := float64(runtime.NumCPU())
		if *launch != "" {
			total := perCycle(res.CPU + brokerCPU)
			fmt.Printf("CPU per 1,000 cycles: broker %.2f s, clients %.2f s, both %.2f s\n", (perCycle(brokerCPU) * 1000).Seconds(), (res.CPUPerCycle() * 1000).Seconds(), (total * 1000).Seconds())
			fmt.Printf("so at most %.0f cycles/s on %.0f idle cores with the clients beside the broker, %.0f for the broker alone\n", cores/total.Seconds(), cores, cores/perCycle(brokerCPU).Seconds())
		} else {
			fmt.Printf("CPU %.2f s per 1,000 cycles (broker and clients), so at most %.0f cycles/s on %.0f idle cores\n", (res.CPUPerCycle() * 1000).Seconds(), cores/res.CPUPerCycle().Seconds(), cores)
		}
	}
	if res.Errors > 0 {
		fmt.Fprintf(os.Stderr, "kbsload: first error: %v\n", res.FirstError)
		os.Exit(1)
	}
}

// served is a broker the load runs against: its URL and key, and how to
// stop it, which says the CPU time it took if it ran as its own process.
type served struct {
	url  string
	key  ed25519.PublicKey
	stop func() (time.Duration, error)
}

func serveHere(dir, policyText string) (*served, error) {
	policy, err := attest.ParsePolicy([]byte(policyText))
	if err != nil {
		return nil, err
	}
	s, err := broker.Open(filepath.Join(dir, "broker.db"), policy)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.Close()
		return nil, err
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return &served{url: "http://" + ln.Addr().String(), key: s.PublicKey(), stop: func() (time.Duration, error) {
		srv.Close()
		return 0, s.Close()
	}}, nil
}

// serveProcess starts `launch broker serve` on a free loopback port and
// reads its key and address from what it prints; its request log goes to
// a file in dir, as an operator's would go to a journal.
func serveProcess(launch, dir, policyText string) (*served, error) {
	policy := filepath.Join(dir, "policy.toml")
	if err := os.WriteFile(policy, []byte(policyText), 0o600); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "requests.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(launch, "broker", "serve", "--policy", policy, "--db", filepath.Join(dir, "broker.db"), "--listen", "127.0.0.1:0", "--tdx-pcs", "off")
	cmd.Stderr = logFile
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var key ed25519.PublicKey
	var url string
	lines := bufio.NewScanner(out)
	for (key == nil || url == "") && lines.Scan() {
		line := lines.Text()
		if k, ok := strings.CutPrefix(line, "broker key: "); ok {
			key, _ = hex.DecodeString(k)
		}
		if u, ok := strings.CutPrefix(line, "listening on "); ok {
			url = u
		}
	}
	if len(key) != ed25519.PublicKeySize || url == "" {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("%s broker serve printed no key and address (its log: %s)", launch, logFile.Name())
	}
	go io.Copy(io.Discard, out)
	return &served{url: url, key: key, stop: func() (time.Duration, error) {
		defer logFile.Close()
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			return 0, err
		}
		err := cmd.Wait()
		ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
		if !ok {
			return 0, fmt.Errorf("the broker's CPU time is not known")
		}
		if err != nil {
			return 0, fmt.Errorf("the broker: %v", err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
	}}, nil
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
