module github.com/ampoule-run/ampoule

go 1.26.8

require (
	github.com/pelletier/go-toml/v2 v2.4.3
	github.com/tetratelabs/wazero v1.12.0
	golang.org/x/sys v0.49.0
)

require github.com/cilium/ebpf v0.22.0
