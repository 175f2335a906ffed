package ampoule_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ampoule-run/ampoule"
	"github.com/ampoule-run/ampoule/attest"
	"github.com/ampoule-run/ampoule/broker"
	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/testwasm"
	"github.com/ampoule-run/ampoule/loader"
	"github.com/ampoule-run/ampoule/sealed"
	"github.com/ampoule-run/ampoule/tee"
	"github.com/ampoule-run/ampoule/tee/sim"
)

// notebookVersion is the notebook example as version v, its [sealed]
// table given extra lines (accept_from, key).
func notebookVersion(t *testing.T, v, sealedExtra string) string {
	t.Helper()
	src := testwasm.Example(t, "notebook")
	return testwasm.CopyBundle(t, src, `name = "notebook"
version = "`+v+`"
profiles = ["debug", "staging", "production"]

[sealed]
mount = "/sealed"
max_size = "1MiB"
`+sealedExtra+`
[limits]
memory = "64MiB"
wall_time = "60s"
`)
}

// measureOf is a bundle's measurement under profile, as launch measure
// prints it.
func measureOf(t *testing.T, bundle, profile string) loader.Measurement {
	t.Helper()
	b, err := loader.Open(bundle)
	if err != nil {
		t.Fatal(err)
	}
	return loader.Measure(b, profile)
}

func acceptFrom(ms ...loader.Measurement) string {
	var q []string
	for _, m := range ms {
		q = append(q, `"`+m.String()+`"`)
	}
	return "accept_from = [" + strings.Join(q, ", ") + "]\n"
}

// runNotebook runs a notebook bundle on the simulator under debug with the
// store and the simulator key given, and returns its output and error. It
// compiles into the test binary's shared cache (testwasm.CacheDir).
func runNotebook(t *testing.T, bundle, simKey, store string, note string) (string, error) {
	t.Helper()
	var out, warn bytes.Buffer
	_, err := ampoule.Run(context.Background(), bundle, ampoule.Config{
		Runner:  migrateRunner(t),
		Profile: "debug", Backend: tee.KindSim, SimKey: simKey, SealedStore: store, CacheDir: testwasm.CacheDir(t),
		Args: []string{note}, Stdout: &out, Stderr: &warn, Warnings: io.Discard,
	})
	return out.String(), err
}

// TestSealedStoreHandedOn: version 1's store opens under version 2, whose
// manifest accepts version 1's measurement, with version 1's notes; once
// version 2 has sealed it back it is version 2's. It opens neither under a
// version 3 that accepts nothing, nor under a version 2 that accepts
// another measurement, nor for another bundle that names version 1's
// measurement but is handed a third bundle's store. Real bundles, real
// measurements, the simulator's real sealing keys.
func TestSealedStoreHandedOn(t *testing.T) {
	dir := t.TempDir()
	simKey := filepath.Join(dir, "sim.key")
	v1 := notebookVersion(t, "1.0.0", "")
	m1 := measureOf(t, v1, "debug")
	v2 := notebookVersion(t, "2.0.0", acceptFrom(m1))
	v2other := notebookVersion(t, "2.0.0", acceptFrom(measureOf(t, notebookVersion(t, "0.9.0", ""), "debug")))
	v3 := notebookVersion(t, "3.0.0", "")

	store := filepath.Join(dir, "notes.sealed")
	if out, err := runNotebook(t, v1, simKey, store, "from-v1"); err != nil || !strings.Contains(out, "run 1: from-v1") {
		t.Fatalf("v1: %q, %v", out, err)
	}
	before, _ := os.ReadFile(store)
	for name, b := range map[string]string{"v3 accepting nothing": v3, "v2 accepting another measurement": v2other} {
		_, err := runNotebook(t, b, simKey, store, "x")
		if codeOf(err) != errcode.SealedStoreForeign {
			t.Fatalf("%s: %v, want E3010", name, err)
		}
		if msg := errcode.Detailed(err); !strings.Contains(msg, m1.String()) || !strings.Contains(msg, measureOf(t, b, "debug").String()) || !strings.Contains(msg, "accept_from") {
			t.Errorf("%s: the error does not name both measurements and accept_from:\n%s", name, msg)
		}
		if after, _ := os.ReadFile(store); !bytes.Equal(before, after) {
			t.Fatalf("%s: a refused run changed the store", name)
		}
	}
	out, err := runNotebook(t, v2, simKey, store, "from-v2")
	if err != nil || !strings.Contains(out, "run 1: from-v1\nrun 2: from-v2") {
		t.Fatalf("v2 accepting v1: %q, %v", out, err)
	}
	if out, err := runNotebook(t, v2, simKey, store, "again"); err != nil || !strings.Contains(out, "run 3: again") {
		t.Fatalf("v2's own store: %q, %v", out, err)
	}
	// Sealed back as version 2's, it is no longer version 1's.
	if _, err := runNotebook(t, v1, simKey, store, "x"); codeOf(err) != errcode.SealedStoreForeign {
		t.Fatalf("v1 after v2 took the store over: %v, want E3010", err)
	}
	// Another machine's simulator derives other keys: v2 accepts v1, but
	// v1's store from elsewhere does not open.
	elsewhere := filepath.Join(dir, "elsewhere.sealed")
	if _, err := runNotebook(t, v1, filepath.Join(dir, "other-sim.key"), elsewhere, "x"); err != nil {
		t.Fatal(err)
	}
	if _, err := runNotebook(t, v2, simKey, elsewhere, "x"); codeOf(err) != errcode.SealedStoreForeign {
		t.Fatalf("v1's store sealed on another machine: %v, want E3010", err)
	}
}

// TestSealedStoreOfAnotherBundle: the host swaps in a store of another
// bundle (the files example's name, its own sealed mount) for a notebook
// version that accepts version 1: refused, E3010, as the store names a
// measurement the manifest does not accept.
func TestSealedStoreOfAnotherBundle(t *testing.T) {
	dir := t.TempDir()
	simKey := filepath.Join(dir, "sim.key")
	v1 := notebookVersion(t, "1.0.0", "")
	other := testwasm.CopyBundle(t, testwasm.Example(t, "notebook"), "name = \"diary\"\nprofiles = [\"debug\"]\n[sealed]\nmount = \"/sealed\"\nmax_size = \"1MiB\"\n")
	store := filepath.Join(dir, "diary.sealed")
	if _, err := runNotebook(t, other, simKey, store, "secret"); err != nil {
		t.Fatal(err)
	}
	v2 := notebookVersion(t, "2.0.0", acceptFrom(measureOf(t, v1, "debug")))
	_, err := runNotebook(t, v2, simKey, store, "x")
	if codeOf(err) != errcode.SealedStoreForeign || !strings.Contains(errcode.Detailed(err), measureOf(t, other, "debug").String()) {
		t.Fatalf("another bundle's store: %v", err)
	}
}

// TestHandOnUnderStaging: under key = "tee" a manifest naming an old
// measurement is no consent, so staging gives version 2 (which accepts
// version 1) version 1's store only with a hand-on signed by the key
// version 1's manifest names in hand_on_key, which its store records:
// without one, E3018; with one for another run, by another key or for a
// store whose version named no key, E3020; a malformed one is the host's
// own input, shown whole. Each refusal leaves the store as it was; with the
// right one the store opens and is sealed back as version 2's. Real
// bundles and measurements, the simulator's real sealing keys.
func TestHandOnUnderStaging(t *testing.T) {
	dir := t.TempDir()
	simKey := filepath.Join(dir, "sim.key")
	tenant := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x7e}, 32))
	stranger := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x5a}, 32))
	pin := "hand_on_key = \"" + hex.EncodeToString(tenant.Public().(ed25519.PublicKey)) + "\"\n"
	v1 := notebookVersion(t, "1.0.0", pin)
	m1 := measureOf(t, v1, "staging")
	v2 := notebookVersion(t, "2.0.0", acceptFrom(m1))
	m2 := measureOf(t, v2, "staging")
	m3 := measureOf(t, notebookVersion(t, "3.0.0", ""), "staging")
	run := func(bundle, store string, handOn []byte) error {
		_, err := ampoule.Run(context.Background(), bundle, ampoule.Config{
			Runner:  migrateRunner(t),
			Profile: "staging", Backend: tee.KindSim, SimKey: simKey, SealedStore: store, SealedHandOn: handOn, NoCache: true, Warnings: io.Discard,
		})
		return err
	}
	store := filepath.Join(dir, "v1.sealed")
	if err := run(v1, store, nil); err != nil {
		t.Fatalf("v1: %v", err)
	}
	sealedBy := func(file string) loader.Measurement {
		data, _ := os.ReadFile(file)
		m, _, err := sealed.Sealer(data)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	before, _ := os.ReadFile(store)
	for name, tc := range map[string]struct {
		handOn []byte
		code   errcode.Code
		host   bool
	}{
		"no hand-on":                {nil, errcode.SealedAcceptRefused, false},
		"a hand-on for another run": {sealed.SignHandOn(tenant, m1, m3), errcode.SealedHandOnInvalid, false},
		"another key's hand-on":     {sealed.SignHandOn(stranger, m1, m2), errcode.SealedHandOnInvalid, false},
		"a malformed hand-on":       {[]byte("ampoule-sealed-hand-on v1 x\n"), errcode.SealedHandOnInvalid, true},
	} {
		err := run(v2, store, tc.handOn)
		if codeOf(err) != tc.code || errcode.IsHost(err) != tc.host {
			t.Errorf("%s: %v, want %v (the host's own input: %v)", name, err, tc.code, tc.host)
		}
		if after, _ := os.ReadFile(store); !bytes.Equal(before, after) {
			t.Fatalf("%s: a refused run changed the store", name)
		}
	}
	if err := run(v2, store, sealed.SignHandOn(tenant, m1, m2)); err != nil {
		t.Fatalf("v2 with v1's hand-on: %v", err)
	}
	if sealedBy(store) != m2 {
		t.Fatal("v2 did not seal the store back as its own")
	}
	// Its own store needs no hand-on.
	if err := run(v2, store, nil); err != nil {
		t.Fatalf("v2 on its own store: %v", err)
	}

	// A version that named no hand_on_key hands its stores on to nobody.
	v1bare := notebookVersion(t, "1.0.1", "")
	mb := measureOf(t, v1bare, "staging")
	bare := filepath.Join(dir, "bare.sealed")
	if err := run(v1bare, bare, nil); err != nil {
		t.Fatal(err)
	}
	v2b := notebookVersion(t, "2.0.1", acceptFrom(mb))
	if err := run(v2b, bare, sealed.SignHandOn(tenant, mb, measureOf(t, v2b, "staging"))); codeOf(err) != errcode.SealedHandOnInvalid || sealedBy(bare) != mb {
		t.Fatalf("the store of a version without hand_on_key: %v", err)
	}
	// A hand-on for a manifest that accepts nothing is a usage error; it
	// says something of the manifest, so under staging only its code.
	if err := run(v1, filepath.Join(dir, "x.sealed"), sealed.SignHandOn(tenant, m1, m2)); codeOf(err) != errcode.Usage || errcode.IsHost(err) {
		t.Fatalf("--hand-on without accept_from: %v", err)
	}
}

// TestExportImportSealed: under debug the store's files come out with
// ExportSealed (an accepted version's store too) and go into a new store
// of another version with ImportSealed, which that version's run opens;
// staging and production refuse both before reading anything, E3019.
func TestExportImportSealed(t *testing.T) {
	dir := t.TempDir()
	simKey := filepath.Join(dir, "sim.key")
	v1 := notebookVersion(t, "1.0.0", "")
	store := filepath.Join(dir, "v1.sealed")
	if _, err := runNotebook(t, v1, simKey, store, "exported-note"); err != nil {
		t.Fatal(err)
	}
	cfg := func(profile, store string) ampoule.Config {
		return ampoule.Config{Profile: profile, Backend: tee.KindSim, SimKey: simKey, SealedStore: store, Warnings: io.Discard, Runner: migrateRunner(t)}
	}
	files := filepath.Join(dir, "files")
	info, err := ampoule.ExportSealed(context.Background(), v1, cfg("debug", store), files)
	if err != nil || info.Entries == 0 || info.From != nil || info.Measurement != measureOf(t, v1, "debug") {
		t.Fatalf("export: %+v, %v", info, err)
	}
	var text strings.Builder
	if info.WriteText(&text); text.String() != fmt.Sprintf("exported %d entries of %s into %s\n", info.Entries, store, files) {
		t.Errorf("export's text: %q", text.String())
	}
	if data, err := os.ReadFile(filepath.Join(files, "notes", "notes.txt")); err != nil || !strings.Contains(string(data), "exported-note") {
		t.Fatalf("the exported notes: %q, %v", data, err)
	}
	// Into a directory that is not empty: refused, nothing written.
	if _, err := ampoule.ExportSealed(context.Background(), v1, cfg("debug", store), files); codeOf(err) != errcode.OutputExists {
		t.Fatalf("export into a non-empty directory: %v", err)
	}
	v9 := notebookVersion(t, "9.0.0", "")
	store9 := filepath.Join(dir, "v9.sealed")
	info, err = ampoule.ImportSealed(context.Background(), v9, cfg("debug", store9), files)
	if err != nil || info.Entries == 0 {
		t.Fatalf("import: %+v, %v", info, err)
	}
	text.Reset()
	if info.WriteText(&text); text.String() != fmt.Sprintf("sealed %d entries of %s into %s, for measurement %s\n", info.Entries, files, store9, measureOf(t, v9, "debug")) {
		t.Errorf("import's text: %q", text.String())
	}
	if out, err := runNotebook(t, v9, simKey, store9, "after-import"); err != nil || !strings.Contains(out, "run 1: exported-note\nrun 2: after-import") {
		t.Fatalf("v9 on the imported store: %q, %v", out, err)
	}
	// An existing store is never replaced.
	if _, err := ampoule.ImportSealed(context.Background(), v9, cfg("debug", store9), files); codeOf(err) != errcode.OutputExists {
		t.Fatalf("import over a store: %v", err)
	}
	// A FIFO is nothing a store holds.
	odd := filepath.Join(dir, "odd")
	os.Mkdir(odd, 0o700)
	if err := syscall.Mkfifo(filepath.Join(odd, "pipe"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ampoule.ImportSealed(context.Background(), v9, cfg("debug", filepath.Join(dir, "odd.sealed")), odd); codeOf(err) != errcode.SealedImportInvalid {
		t.Fatalf("import of a FIFO: %v", err)
	}
	for _, p := range []string{"staging", "production"} {
		out := filepath.Join(dir, "out-"+p)
		_, err := ampoule.ExportSealed(context.Background(), v1, cfg(p, store), out)
		if codeOf(err) != errcode.SealedPlainRefused || !errcode.IsHost(err) {
			t.Errorf("export under %s: %v, want E3019 shown to the host", p, err)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("export under %s made %s", p, out)
		}
		if _, err := ampoule.ImportSealed(context.Background(), v1, cfg(p, filepath.Join(dir, p+".sealed")), files); codeOf(err) != errcode.SealedPlainRefused {
			t.Errorf("import under %s: %v, want E3019", p, err)
		}
	}
}

// TestBrokerBundleKeyHandsOn: with key = "broker" under staging, the
// broker's policy puts three versions in one bundle, so they share its
// sealing key; version 2, whose manifest accepts version 1, takes version
// 1's store over; version 3, in the same bundle but accepting nothing, is
// refused it (the store names its sealer), as is version 1 once version 2
// has sealed it; and a version the policy leaves out of the bundle gets a
// key of its own, which does not open the store even though its manifest
// accepts version 1. Real broker (bbolt, loopback HTTP), real simulator
// evidence, real measurements.
func TestBrokerBundleKeyHandsOn(t *testing.T) {
	dir := t.TempDir()
	simKey := filepath.Join(dir, "sim.key")
	srv, err := broker.Open(filepath.Join(dir, "broker.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	httpSrv := httptest.NewServer(srv.Handler())
	t.Cleanup(httpSrv.Close)
	brokered := "key = \"broker\"\n"
	version := func(v, extra string) string {
		b := notebookVersion(t, v, brokered+extra)
		// [broker] goes at the top level, before the first table.
		manifest := filepath.Join(b, "ampoule.toml")
		data, _ := os.ReadFile(manifest)
		data = []byte(strings.Replace(string(data), "[sealed]", "[broker]\nurl = \""+httpSrv.URL+"\"\nkey = \""+hex.EncodeToString(srv.PublicKey())+"\"\n\n[sealed]", 1))
		if err := os.WriteFile(manifest, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return b
	}
	v1 := version("1.0.0", "")
	m1 := measureOf(t, v1, "staging")
	v2 := version("2.0.0", acceptFrom(m1))
	v3 := version("3.0.0", "")
	outsider := version("2.1.0", acceptFrom(m1))
	m2, m3, mo := measureOf(t, v2, "staging"), measureOf(t, v3, "staging"), measureOf(t, outsider, "staging")
	simBackend, err := sim.LoadOrCreate(simKey)
	if err != nil {
		t.Fatal(err)
	}
	q := func(ms ...loader.Measurement) string {
		var s []string
		for _, m := range ms {
			s = append(s, `"`+m.String()+`"`)
		}
		return "[" + strings.Join(s, ", ") + "]"
	}
	policy, err := attest.ParsePolicy([]byte("measurements = " + q(m1, m2, m3, mo) + "\nprofiles = [\"staging\"]\nbackends = [\"sim\"]\nallow_insecure = true\nsim_keys = [\"" + hex.EncodeToString(simBackend.PublicKey()) + "\"]\n[bundles]\nnotebook = " + q(m1, m2, m3) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	srv.SetPolicy(policy)
	store := filepath.Join(dir, "notes.sealed")
	run := func(bundle string) error {
		_, err := ampoule.Run(context.Background(), bundle, ampoule.Config{
			Runner:  migrateRunner(t),
			Profile: "staging", Backend: tee.KindSim, SimKey: simKey, SealedStore: store, NoCache: true, Warnings: io.Discard,
		})
		return err
	}
	sealer := func() loader.Measurement {
		data, err := os.ReadFile(store)
		if err != nil {
			t.Fatal(err)
		}
		m, named, err := sealed.Sealer(data)
		if err != nil || !named {
			t.Fatalf("the store names no sealer: %v", err)
		}
		return m
	}
	if err := run(v1); err != nil {
		t.Fatalf("v1: %v", err)
	}
	if sealer() != m1 {
		t.Fatal("v1's store does not name v1")
	}
	for name, b := range map[string]string{"v3, accepting nothing": v3, "a version out of the bundle": outsider} {
		if err := run(b); codeOf(err) != errcode.SealedStoreForeign {
			t.Fatalf("%s: %v, want E3010", name, err)
		}
		if sealer() != m1 {
			t.Fatalf("%s: a refused run changed the store", name)
		}
	}
	if err := run(v2); err != nil {
		t.Fatalf("v2 accepting v1 under the bundle's key: %v", err)
	}
	if sealer() != m2 {
		t.Fatal("v2 did not seal the store back as its own")
	}
	if err := run(v2); err != nil {
		t.Fatalf("v2 on its own store: %v", err)
	}
	if err := run(v1); codeOf(err) != errcode.SealedStoreForeign {
		t.Fatalf("v1 after v2 took the store over: %v, want E3010", err)
	}
}

// codeOf is err's code, or 0 for no error.
func codeOf(err error) errcode.Code {
	if err == nil {
		return 0
	}
	return errcode.From(err).Code
}
