package attest

import (
	"strings"

	"github.com/ampoule-run/ampoule/errcode"
)

// InputHints say, for each file input of the checks by hand (by its
// flag, as FlagOf names it) and of launch verify, what it takes and
// where it comes from: a file that cannot be read or is not what the flag
// takes is refused with its own flag's hint, never another input's.
var InputHints = map[string]string{
	"--snp-report":     "pass a raw SEV-SNP attestation report (1184 bytes) as the guest's /dev/sev-guest gives it (snpguest report FILE); testdata/snp/report.bin is a real one",
	"--vcek":           "pass the VCEK certificate (DER or PEM) that signed the report: AMD's KDS serves it for the chip, or take it from the extended report's certificate table; testdata/snp/vcek.der is a real one",
	"--vlek":           "pass the VLEK certificate (DER or PEM) from the extended report's certificate table, on a cloud provider's machines",
	"--chain":          "pass the product's ASK (or ASVK) and ARK in PEM, as AMD's KDS serves them at /vcek/v1/PRODUCT/cert_chain; testdata/snp/cert_chain.pem is Milan's",
	"--tdx-quote":      "pass a raw TDX quote (version 4 or 5) as the guest's configfs-tsm report gives it (outblob); testdata/tdx/quote.dat is a real one",
	"--tdx-collateral": "pass the JSON that 'launch collateral fetch --tdx-quote FILE -o FILE' wrote",
	"--policy":         "pass the TOML that 'launch policy new --from BUNDLE' wrote",
	"--ear":            "pass the token a broker answered at /kbs/v0/attest (or a file holding it), with --jwks the broker's keys",
	"--jwks":           "pass the broker's keys: a file saved from, or the URL of, its /.well-known/jwks.json",
	"EVIDENCE":         "pass the JSON that 'launch attest' wrote, or that 'launch logs decrypt --envelope-out FILE' took from a run's log",
}

// refusedHints are the hints for input that was read but does not verify,
// for launch verify's checks by hand.
var refusedHints = map[string]string{
	"--snp-report": "the report must be signed by the VCEK or VLEK given, through AMD's root for --product (Milan unless said); the error says which check failed",
	"--vcek":       "--vcek and --vlek take the certificate (DER or PEM) of the key that signed the report, not the report or a chain",
	"--tdx-quote":  "the quote must carry its PCK chain to Intel's root, and with --tdx-collateral a TCB that is up to date; the error says which check failed",
}

// InputError is err, about the file a verify flag named, with that flag
// in its message and the flag's own hint.
func InputError(flag string, err error) error {
	e := errcode.From(err)
	msg := e.Error()
	if flag != "EVIDENCE" && !strings.HasPrefix(msg, flag) {
		msg = flag + ": " + msg
	}
	return errcode.Errorf(e.Code, "%s", msg).WithHint(InputHints[flag])
}

// refusedError is a check by hand's refusal (E3008) with a hint that fits
// the flag whose input was refused.
func refusedError(flag string, err error) error {
	return errcode.From(err).WithHint(refusedHints[flag])
}

// CheckProduct checks --product before any report is read: a processor
// line, with an optional stepping.
func CheckProduct(product string) error {
	line, _, _ := strings.Cut(product, "-")
	switch line {
	case "Milan", "Genoa", "Turin":
		return nil
	}
	return errcode.Errorf(errcode.Usage, "--product %q is not an SEV-SNP processor line", product).
		WithHint("write Milan, Genoa or Turin, with a stepping if need be (Milan-B1); the report's chip is one of them")
}

// Hinted is an error of the checks by hand with the hint of the input it
// names first (FlagOf): a refusal's, or a file's.
func Hinted(err error) error {
	flag := FlagOf(err)
	switch {
	case flag == "":
		return err
	case errcode.From(err).Code == errcode.EvidenceRefused && refusedHints[flag] != "":
		return refusedError(flag, err)
	case InputHints[flag] != "":
		return InputError(flag, err)
	}
	return err
}
