package main

import (
	"bytes"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"time"

	"github.com/ampoule-run/ampoule/errcode"
	"github.com/ampoule-run/ampoule/internal/regfile"
	"github.com/ampoule-run/ampoule/tee/snp"
)

// snpFiles are the files of an SEV-SNP report checked by hand.
type snpFiles struct{ report, vcek, vlek, chain string }

// readSmall reads a file of at most max bytes: a report, a certificate or
// a chain is never larger.
func readSmall(path string, max int64) ([]byte, error) {
	// A FIFO or a device here would never end: only regular files.
	f, _, err := regfile.Open(path)
	if err != nil {
		return nil, errcode.Errorf(errcode.EvidenceMalformed, "%v", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, errcode.Errorf(errcode.EvidenceMalformed, "%s: %v", path, err)
	}
	if int64(len(data)) > max {
		return nil, errcode.Errorf(errcode.EvidenceMalformed, "%s is larger than %d bytes", path, max)
	}
	return data, nil
}

// derOf takes a certificate as AMD's KDS serves it (DER) or in PEM.
func derOf(data []byte) []byte {
	if b, rest := pem.Decode(data); b != nil && b.Type == "CERTIFICATE" && len(bytes.TrimSpace(rest)) == 0 {
		return b.Bytes
	}
	return data
}

// verifySNP checks a raw SEV-SNP report, the VCEK or VLEK certificate
// that signed it and, if given, the product's chain as AMD publishes it,
// offline at now against AMD's roots (roots replaces them in tests only),
// and prints the claims.
func verifySNP(e *cliEnv, files snpFiles, product string, now time.Time, asJSON bool, roots *snp.Roots) int {
	certFile, flag := files.vcek, "--vcek"
	switch {
	case files.vcek != "" && files.vlek != "":
		return e.fail(errcode.Errorf(errcode.Usage, "--vcek and --vlek name the same certificate: pass one").WithHint("a report is signed by its chip's VCEK or by its cloud provider's VLEK"))
	case files.vlek != "":
		certFile, flag = files.vlek, "--vlek"
	case files.vcek == "":
		return e.fail(errcode.Errorf(errcode.Usage, "--snp-report needs --vcek FILE or --vlek FILE").WithHint("fetch the VCEK from AMD's KDS, or take the VCEK or VLEK from the extended report's certificate table"))
	}
	if err := snpProduct(product); err != nil {
		return e.fail(err)
	}
	raw, err := readSmall(files.report, 16<<10)
	if err != nil {
		return e.fail(inputError("--snp-report", err))
	}
	certData, err := readSmall(certFile, 16<<10)
	if err != nil {
		return e.fail(inputError(flag, err))
	}
	cert := derOf(certData)
	signer, err := snp.CertificateSigner(cert)
	if err != nil {
		return e.fail(refusedError("--vcek", errcode.Errorf(errcode.EvidenceRefused, "%s %s: %v", flag, certFile, err)))
	}
	if flag == "--vlek" && signer != snp.SignerVLEK {
		return e.fail(errcode.Errorf(errcode.EvidenceRefused, "--vlek %s is a %s certificate, not a VLEK", certFile, signer).WithHint("pass a VCEK as --vcek"))
	}
	opts := snp.Options{Product: product, Now: now, Roots: roots}
	chainNote := "the " + map[string]string{snp.SignerVCEK: "ASK", snp.SignerVLEK: "ASVK"}[signer] + " built into launch"
	if files.chain != "" {
		if opts.Chain, err = readSmall(files.chain, snp.MaxChain); err != nil {
			return e.fail(inputError("--chain", err))
		}
		if len(opts.Chain) == 0 {
			return e.fail(errcode.Errorf(errcode.EvidenceMalformed, "--chain %s is empty", files.chain).WithHint("pass the ASK (or ASVK) and ARK in PEM, as AMD's KDS serves them at /vcek/v1/PRODUCT/cert_chain"))
		}
		chainNote = "the chain in " + files.chain
	}
	claims, err := snp.Verify(raw, cert, opts)
	if err != nil {
		return e.fail(refusedError("--snp-report", errcode.Errorf(errcode.EvidenceRefused, "%v", err)))
	}
	if asJSON {
		return writeJSON(e, map[string]any{
			"signature_chain": "valid", "measurement": hex.EncodeToString(claims.Measurement[:]),
			"report_data": hex.EncodeToString(claims.ReportData[:]), "host_data": hex.EncodeToString(claims.HostData[:]),
			"policy": fmt.Sprintf("%#x", claims.Policy), "debug_allowed": claims.Debug, "vmpl": claims.VMPL,
			"current_tcb": fmt.Sprintf("%#016x", claims.CurrentTCB), "reported_tcb": fmt.Sprintf("%#016x", claims.ReportedTCB),
			"version": claims.Version, "chip_id": hex.EncodeToString(claims.ChipID),
			"signer": claims.Signer, "chain": map[bool]string{true: "file", false: "built in"}[files.chain != ""],
		})
	}
	fmt.Fprintf(e.stdout, "signature and certificate chain: valid (signed by a %s, through %s, to AMD's %s root, at %s)\n", claims.Signer, chainNote, product, now.UTC().Format(time.RFC3339))
	fmt.Fprintf(e.stdout, "measurement:   %x\nreport data:   %x\nhost data:     %x\n", claims.Measurement, claims.ReportData, claims.HostData)
	fmt.Fprintf(e.stdout, "policy:        %#x (debug %s)\nvmpl:          %d\nreported tcb:  %#016x (bootloader %d, tee %d, snp %d, microcode %d)\ncurrent tcb:   %#016x\nversion:       %d\n",
		claims.Policy, map[bool]string{true: "ALLOWED", false: "not allowed"}[claims.Debug], claims.VMPL, claims.ReportedTCB,
		claims.TCB.Bootloader, claims.TCB.TEE, claims.TCB.SNP, claims.TCB.Microcode, claims.CurrentTCB, claims.Version)
	return 0
}
