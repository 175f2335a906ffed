# Ampoule. 'make demo' runs the hello example; 'make test' runs every test.
GO       ?= go
EXAMPLES := hello files compute crash leak notebook secret-consumer
BIN      := bin/launch
FUZZTIME ?= 30s

# Every go command here runs the toolchain go.mod names, whatever the
# machine's own go is or its GOTOOLCHAIN setting says: releases before it
# carry standard-library vulnerabilities that 'make vulncheck' reports.
# Set GOTOOLCHAIN in the environment to choose another.
GOTOOLCHAIN ?= $(shell sed -n 's/^toolchain //p' go.mod)
export GOTOOLCHAIN

# The checkers, pinned, and the Go vulnerability database govulncheck reads:
# the golang.org/x/vulndb module, whose data/osv holds one OSV report per
# entry, fetched from the module proxy (no network access to vuln.go.dev).
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
GOVULNCHECK := golang.org/x/vuln/cmd/govulncheck@v1.9.0
VULNDB      := golang.org/x/vulndb@v0.0.0-20261105234957-e22db6528018
VULNDB_OSV  := 4789

.PHONY: all build vmhost examples tools shells containerd corpus corpus-write demo test vet staticcheck vulncheck race conformance wasi-testsuite bench fuzz docs clean

all: build examples

# Static (no cgo: Go's own DNS resolver and user lookup): a launcher linked
# with cgo starts through the dynamic loader and libc, which costs every
# process, and every runner, a few milliseconds (BENCHMARKS.md).
build:
	CGO_ENABLED=0 $(GO) build -o $(BIN) ./cmd/launch
	CGO_ENABLED=0 $(GO) build -o bin/containerd-shim-ampoule-v1 ./cmd/containerd-shim-ampoule-v1

examples:
	@for e in $(EXAMPLES); do \
		GOOS=wasip1 GOARCH=wasm $(GO) build -o wasm-examples/$$e/module.wasm ./wasm-examples/$$e || exit 1; \
	done

# Tools beyond Go for 'make corpus' and 'make bench': wat2wasm (Debian's
# wabt) assembles the hand-written modules. The tests need none: they run
# the .wasm committed beside each .wat.
tools:
	@command -v wat2wasm >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wabt >/dev/null; \
		else echo "make: wat2wasm is missing; install Debian's wabt package (sudo apt-get install wabt)"; exit 1; fi; }

# The shells whose completion scripts the tests check (zsh -n, fish -n and
# fish's complete -C): installed from Debian when missing and run as root;
# elsewhere the tests say they did not check them.
shells:
	@command -v zsh >/dev/null && command -v fish >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zsh fish >/dev/null; \
		else echo "make: zsh or fish is missing: the completion tests check bash's script alone"; fi; }

# QEMU, Debian's kernel, OVMF and a software TPM for the VM tests (vm's
# TestBootTCG boots a guest, TestRTMREventsOfABootedGuest boots it under
# OVMF with the TPM), installed as root when missing.
vmhost:
	@command -v qemu-system-x86_64 >/dev/null && ls /boot/vmlinuz-* /usr/share/ovmf/OVMF.fd >/dev/null 2>&1 && command -v swtpm_setup >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 linux-image-amd64 ovmf swtpm swtpm-tools >/dev/null; \
		else echo "make: qemu-system-x86_64, a kernel, OVMF or swtpm is missing: the VM boot tests skip"; fi; }
# Debian's containerd and runc, for the shim's tests (package ctrshim),
# which start a containerd of their own in a temporary directory: installed
# when missing and run as root; elsewhere those tests say why they skip.
containerd:
	@command -v containerd >/dev/null && command -v ctr >/dev/null && command -v runc >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq containerd runc >/dev/null; \
		else echo "make: containerd is missing: the shim's containerd tests skip"; fi; }

# The hand-written modules the tests run: the hostile corpus and the tests'
# own. 'make corpus' reassembles each .wat into a temporary directory and
# fails if what wat2wasm makes differs from the .wasm committed beside it,
# or that .wasm is missing; 'make corpus-write' rewrites the .wasm files.
# (bench/wat's modules are assembled by the bench itself, with their counts.)
CORPUS_WAT := $(sort $(wildcard wasm-examples/hostile/*.wat cmd/launch/testdata/*.wat testdata/tiny/*.wat testdata/wasigaps/*.wat sandbox/testdata/*.wat))

corpus: tools
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && fail=0 && \
	for w in $(CORPUS_WAT); do \
		m=$${w%.wat}.wasm; \
		wat2wasm "$$w" -o "$$tmp/m.wasm" || { fail=1; continue; }; \
		if [ ! -f "$$m" ]; then echo "make: $$m is missing; run 'make corpus-write'"; fail=1; \
		elif ! cmp -s "$$tmp/m.wasm" "$$m"; then echo "make: $$m is not what wat2wasm makes of $$w; run 'make corpus-write'"; fail=1; fi; \
	done; \
	test $$fail = 0 && echo "corpus: $(words $(CORPUS_WAT)) modules match their .wat"

corpus-write: tools
	@for w in $(CORPUS_WAT); do wat2wasm "$$w" -o "$${w%.wat}.wasm" || exit 1; done

# The main job: the hello example, debug profile, simulator backend.
demo: build examples
	./$(BIN) run --profile debug --backend sim wasm-examples/hello

vet:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt: the files above need formatting'; exit 1; }
	$(GO) vet ./...

# staticcheck's default checks over every package; zero findings.
staticcheck:
	$(GO) run $(STATICCHECK) ./...

# Known vulnerabilities in code the packages reach, the standard library's
# included: govulncheck fails on any. govulncheck reads a directory of OSV
# files as a database; one with fewer entries than the pinned module holds
# (VULNDB_OSV: change it with VULNDB) is refused, so a missing or emptied
# copy cannot pass as clean.
vulncheck:
	@$(GO) mod download $(VULNDB) && db=$$($(GO) list -m -f '{{.Dir}}' $(VULNDB))/data/osv && \
	n=$$(ls "$$db" | grep -c '^GO-.*\.json$$'); \
	test "$$n" -ge $(VULNDB_OSV) || { echo "make: $$db holds $$n OSV entries, fewer than the pinned database's $(VULNDB_OSV)"; exit 1; }; \
	echo "$(GO) run $(GOVULNCHECK) -db file://$$db ./..."; \
	$(GO) run $(GOVULNCHECK) -db "file://$$db" ./...


# Every package's tests under the race detector. -short leaves out the
# conformance suite: what it tests runs in plain wazero and launch
# binaries it builds without -race, so under -race it would repeat the run
# above at twice the time and race nothing more. Two sandbox tests whose
# cases drive one path with several inputs (TestTornCacheEntry's tears,
# TestInterpretFirstStopContinue's stops) run one case per path here;
# the run above runs them all.
race: examples
	$(GO) test -race -short -count=1 -timeout 12m ./...

# Everything: formatting, vet, staticcheck, govulncheck, unit tests (fuzz
# seeds included), the hostile-module corpus and the external WASI
# conformance suite (Go's own wasip1 standard-library tests), each driven
# through plain wazero and through 'launch run', then every package again
# under the race detector. Seccomp tests run as any user; CI runs as root.
test: examples shells vmhost containerd vet staticcheck vulncheck
	$(GO) test -count=1 -timeout 12m ./...
	@$(MAKE) --no-print-directory race

# Only the conformance suite, verbose.
conformance: examples
	$(GO) test -count=1 -timeout 12m -v -run TestGoWASIConformance ./conformance

# The external WASI preview 1 suite (WebAssembly/wasi-testsuite: its
# prebuilt C, Rust and AssemblyScript tests), each test through 'launch
# run' under debug and staging with its directory mounted ::rw. Nothing is
# fetched: WASI_TESTSUITE names a local copy, a checkout of the suite's
# prod/testsuite-base branch (which holds the prebuilt tests).
wasi-testsuite: build
	@test -n "$(WASI_TESTSUITE)" || { echo "make: set WASI_TESTSUITE to a local copy of WebAssembly/wasi-testsuite (git clone -b prod/testsuite-base https://github.com/WebAssembly/wasi-testsuite)"; exit 1; }
	$(GO) run ./conformance/wasisuite -launch $(BIN) $(WASI_TESTSUITE)

# Start-up, host calls and throughput against plain wazero, measured in one run: Go
# benchmarks in-process, then whole processes with the ratio table.
bench: tools examples
	$(GO) test -run '^$$' -bench . -benchtime 10x ./bench
	$(GO) test -run '^$$' -bench . -benchtime 20x ./sealed
	$(GO) test -run '^$$' -bench Inspect -benchtime 20x ./sandbox
	$(GO) test -run '^$$' -bench GateCall -benchtime 200000x ./sandbox
	$(GO) test -run '^$$' -bench . -benchtime 300x ./tee/tdx ./tee/snp
	$(GO) test -run '^$$' -bench . -benchtime 200x ./broker
	$(GO) test -run '^$$' -bench 'ContainerdRun|CRIPods' -benchtime 50x ./ctrshim
	$(GO) run ./bench/cmd/ratios

# A longer fuzz run of every decoder (FUZZTIME each).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseManifest$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./loader
	$(GO) test -run '^$$' -fuzz '^FuzzFromTar$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./loader
	$(GO) test -run '^$$' -fuzz '^FuzzParseMount$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./loader
	$(GO) test -run '^$$' -fuzz '^FuzzPatterns$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./loader
	$(GO) test -run '^$$' -fuzz '^FuzzReader$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./logging
	$(GO) test -run '^$$' -fuzz '^FuzzParseHeader$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./logging
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeEnvelope$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./attest
	$(GO) test -run '^$$' -fuzz '^FuzzParseOVMF$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./vm/measure
	$(GO) test -run '^$$' -fuzz '^FuzzParsePolicy$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./attest
	$(GO) test -run '^$$' -fuzz '^FuzzWriteTemplate$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./attest
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeCollateral$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./tee/tdx
	$(GO) test -run '^$$' -fuzz '^FuzzVerifyQuote$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./tee/tdx
	$(GO) test -run '^$$' -fuzz '^FuzzVerifyReport$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./tee/snp
	$(GO) test -run '^$$' -fuzz '^FuzzParseChain$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./tee/snp
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeReleaseRequest$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./broker
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeReleaseResponse$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./broker
	$(GO) test -run '^$$' -fuzz '^FuzzCheckNonce$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./broker
	$(GO) test -run '^$$' -fuzz '^FuzzKBSEndpoints$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./broker
	$(GO) test -run '^$$' -fuzz '^FuzzAmpouleEvidence$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./broker
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRequest$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./broker/kbs
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeChallenge$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./broker/kbs
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeAttestation$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./broker/kbs
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeJWK$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./broker/kbs
	$(GO) test -run '^$$' -fuzz '^FuzzDecrypt$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./broker/kbs
	$(GO) test -run '^$$' -fuzz '^FuzzVerifyEAR$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./broker/kbs
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeProblem$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./broker/kbs
	$(GO) test -run '^$$' -fuzz '^FuzzSNPReportFromTrustee$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./broker/kbs
	$(GO) test -run '^$$' -fuzz '^FuzzNoDuplicates$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./broker/kbs
	$(GO) test -run '^$$' -fuzz '^FuzzPollOneoff$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./sandbox
	$(GO) test -run '^$$' -fuzz '^FuzzStartSection$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./sandbox
	$(GO) test -run '^$$' -fuzz '^FuzzOpen$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./sealed
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./sealed
	$(GO) test -run '^$$' -fuzz '^FuzzKeysOpen$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./sealed
	$(GO) test -run '^$$' -fuzz '^FuzzParseHandOn$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./sealed
	$(GO) test -run '^$$' -fuzz '^FuzzParseHandOnKey$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./sealed
	$(GO) test -run '^$$' -fuzz '^FuzzInspect$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./sandbox
	$(GO) test -run '^$$' -fuzz '^FuzzParseHeader$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./internal/testwasm
	$(GO) test -run '^$$' -fuzz '^FuzzCompileDecides$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./shim
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./internal/resource
	$(GO) test -run '^$$' -fuzz '^FuzzOpenStored$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./broker
	$(GO) test -run '^$$' -fuzz '^FuzzEntry$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./codecache
	$(GO) test -run '^$$' -fuzz '^FuzzParseHelp$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./internal/cmdline
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeReport$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./shim/audit
	$(GO) test -run '^$$' -fuzz '^FuzzServeFrames$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s .
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./vm/initdata
	$(GO) test -run '^$$' -fuzz '^FuzzRead$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./ociimage
	$(GO) test -run '^$$' -fuzz '^FuzzParseSpec$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./ctrshim
	$(GO) test -run '^$$' -fuzz '^FuzzMountArgs$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./ctrshim
	$(GO) test -run '^$$' -fuzz '^FuzzResolveSettings$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./ctrshim
	$(GO) test -run '^$$' -fuzz '^FuzzParseConfig$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./conformance/wasisuite

# Regenerate docs/errors.md from the registry, and docs/launch.1 from the
# commands' help files and flags.
docs:
	$(GO) run ./cmd/launch errors --markdown > docs/errors.md
	$(GO) run ./cmd/launch man > docs/launch.1

clean:
	rm -rf bin wasm-examples/*/module.wasm
