package attest

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ampoule-run/ampoule/tee/sim"
	"github.com/ampoule-run/ampoule/tee/snp"
)

// TestGoBuiltPolicyMaxAge: a Policy built in Go that sets no MaxAge
// judges simulator evidence under DefaultMaxAge: fresh evidence is
// affirmed (it was refused as older than a max_age of 0), and evidence
// older than DefaultMaxAge is refused naming it.
func TestGoBuiltPolicyMaxAge(t *testing.T) {
	p := &Policy{Measurements: [][48]byte{testMeasurement}, Profiles: []string{"staging"}, Backends: []string{sim.Kind}, AllowInsecure: true, SimKeysAny: true}
	env := simEnvelope(t, 7)
	if r := Verify(env, p, Options{Nonce: testNonce, Now: env.Issued.Add(time.Second)}); r.Status != Affirming {
		t.Errorf("fresh evidence under a Go-built policy: %s %q", r.Status, r.Reasons)
	}
	r := Verify(env, p, Options{Nonce: testNonce, Now: env.Issued.Add(DefaultMaxAge + time.Minute)})
	if r.Status != Contraindicated || !strings.Contains(strings.Join(r.Reasons, "; "), "more than max_age "+DefaultMaxAge.String()) {
		t.Errorf("evidence older than DefaultMaxAge: %s %q", r.Status, r.Reasons)
	}
	p.MaxAge = 10 * time.Minute
	if r := Verify(env, p, Options{Nonce: testNonce, Now: env.Issued.Add(DefaultMaxAge + time.Minute)}); r.Status != Affirming {
		t.Errorf("a MaxAge set in Go is not the bound: %s %q", r.Status, r.Reasons)
	}
}

// TestPolicyFileFormat: every key of the TOML form lands, decoded, in its
// typed field (hex in either case), and a file setting none of the
// optional keys leaves them unset with max_age at DefaultMaxAge.
func TestPolicyFileFormat(t *testing.T) {
	m := hex.EncodeToString(testMeasurement[:])
	h := func(b byte, n int) string { return hex.EncodeToString(bytes.Repeat([]byte{b}, n)) }
	d := func(b byte) [48]byte { return [48]byte(bytes.Repeat([]byte{b}, 48)) }
	key := ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey)
	file := "measurements = [\"" + strings.ToUpper(m) + "\", \"" + h(1, 48) + "\"]\n" +
		"profiles = [\"staging\", \"production\"]\nbackends = [\"sev-snp\", \"tdx\", \"sim\"]\nallow_insecure = true\n" +
		"sim_keys = [\"" + hex.EncodeToString(key) + "\"]\nmax_age = \"90s\"\nallow_debug = true\nsnp_product = \"Genoa-B1\"\n" +
		"tdx_min_tee_tcb_svn = \"0300\"\nsnp_launch_measurements = [\"" + h(2, 48) + "\"]\nsnp_host_data = \"" + h(3, 32) + "\"\n" +
		"tdx_mrtds = [\"" + h(4, 48) + "\", \"" + h(5, 48) + "\"]\ntdx_mr_config_id = \"" + h(6, 48) + "\"\ntdx_require_rtmr = true\n" +
		"tdx_td_attributes = \"0000001000000000\"\ntdx_td_attributes_mask = \"0000003000000000\"\ntdx_require_tcb_up_to_date = true\n" +
		"[tdx_rtmrs]\nrtmr0 = \"" + h(7, 48) + "\"\nrtmr2 = \"" + h(9, 48) + "\"\n" +
		"[snp_min_tcb]\nbootloader = 3\ntee = 1\nsnp = 8\nmicrocode = 115\n"
	got, err := ParsePolicy([]byte(file))
	if err != nil {
		t.Fatal(err)
	}
	r6, r7, r9 := d(6), d(7), d(9)
	want := &Policy{
		Measurements: [][48]byte{testMeasurement, d(1)}, Profiles: []string{"staging", "production"}, Backends: []string{"sev-snp", "tdx", "sim"},
		AllowInsecure: true, SimKeys: []ed25519.PublicKey{key}, MaxAge: 90 * time.Second, AllowDebug: true, SNPProduct: "Genoa-B1",
		SNPMinTCB: &snp.TCB{Bootloader: 3, TEE: 1, SNP: 8, Microcode: 115}, SNPLaunchMeasurements: [][48]byte{d(2)},
		SNPHostData: (*[32]byte)(bytes.Repeat([]byte{3}, 32)), TDXMinTeeTcbSvn: []byte{3, 0}, TDXMRTDs: [][48]byte{d(4), d(5)},
		TDXMRConfigID: &r6, TDXRTMRs: [3]*[48]byte{&r7, nil, &r9}, TDXRequireRTMR: true,
		TDXTDAttributes: &TDAttributes{Value: [8]byte{3: 0x10}, Mask: [8]byte{3: 0x30}}, TDXRequireTCBUpToDate: true,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ParsePolicy:\n got %+v\nwant %+v", got, want)
	}
	minimal, err := ParsePolicy([]byte("measurements = [\"" + m + "\"]\nprofiles = [\"staging\"]\nbackends = [\"sim\"]\nsim_keys = \"any\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (&Policy{Measurements: [][48]byte{testMeasurement}, Profiles: []string{"staging"}, Backends: []string{"sim"}, SimKeysAny: true, MaxAge: DefaultMaxAge}); !reflect.DeepEqual(minimal, want) {
		t.Errorf("minimal policy:\n got %+v\nwant %+v", minimal, want)
	}
}

// hexKeyCase is a policy line setting key to n bytes of hex; the
// measurements' line replaces base's own.
type hexKeyCase struct {
	key  string
	line func(v string) string
	n    int
}

func (c hexKeyCase) doc(base, v string) string {
	if c.key == "measurements" {
		return "measurements = [\"" + v + "\"]\n" + base[strings.Index(base, "\n")+1:]
	}
	return base + c.line(v)
}

// TestPolicyBadHexNamesItsKey: a value in any hex key that is not hex, or
// not its length, is refused when the policy is read, the error naming the
// key (nothing is decoded later, where an error could be dropped).
func TestPolicyBadHexNamesItsKey(t *testing.T) {
	m := hex.EncodeToString(testMeasurement[:])
	base := "measurements = [\"" + m + "\"]\nprofiles = [\"staging\"]\nbackends = [\"sim\"]\n"
	for _, tc := range []hexKeyCase{
		{"measurements", nil, 48},
		{"snp_launch_measurements", func(v string) string { return "snp_launch_measurements = [\"" + v + "\"]\n" }, 48},
		{"snp_host_data", func(v string) string { return "snp_host_data = \"" + v + "\"\n" }, 32},
		{"tdx_mrtds", func(v string) string { return "tdx_mrtds = [\"" + m + "\", \"" + v + "\"]\n" }, 48},
		{"tdx_mr_config_id", func(v string) string { return "tdx_mr_config_id = \"" + v + "\"\n" }, 48},
		{"tdx_td_attributes", func(v string) string {
			return "tdx_td_attributes = \"" + v + "\"\ntdx_td_attributes_mask = \"0000003000000000\"\n"
		}, 8},
		{"tdx_td_attributes_mask", func(v string) string {
			return "tdx_td_attributes = \"0000001000000000\"\ntdx_td_attributes_mask = \"" + v + "\"\n"
		}, 8},
		{"tdx_min_tee_tcb_svn", func(v string) string { return "tdx_min_tee_tcb_svn = \"" + v + "\"\n" }, 16},
		{"sim_keys", func(v string) string { return "sim_keys = [\"" + v + "\"]\n" }, 32},
		{"tdx_rtmrs.rtmr0", func(v string) string { return "[tdx_rtmrs]\nrtmr0 = \"" + v + "\"\n" }, 48},
		{"tdx_rtmrs.rtmr1", func(v string) string { return "[tdx_rtmrs]\nrtmr1 = \"" + v + "\"\n" }, 48},
		{"tdx_rtmrs.rtmr2", func(v string) string { return "[tdx_rtmrs]\nrtmr2 = \"" + v + "\"\n" }, 48},
	} {
		good := strings.Repeat("0a", tc.n)
		for what, v := range map[string]string{
			"not hex":     "zz" + good[2:],
			"odd length":  good[1:],
			"a byte more": good + "00",
			"a byte less": good[2:],
		} {
			if tc.key == "tdx_min_tee_tcb_svn" && what == "a byte less" {
				continue // 1 to 16 bytes: a shorter one is a valid minimum
			}
			_, err := ParsePolicy([]byte(tc.doc(base, v)))
			if !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), ": "+tc.key+": ") {
				t.Errorf("%s %s: %v", tc.key, what, err)
			}
		}
		// The same key with a good value parses: the error above is the
		// value's, not the line's.
		if _, err := ParsePolicy([]byte(tc.doc(base, good))); err != nil {
			t.Errorf("%s with a good value: %v", tc.key, err)
		}
	}
}

// TestPolicyBundles: [bundles] groups measurements by bundle name for the
// broker's sealing keys; each must be a measurement the policy lists, in
// one bundle only, under a name a manifest could have.
func TestPolicyBundles(t *testing.T) {
	a, b, c := strings.Repeat("0a", 48), strings.Repeat("0b", 48), strings.Repeat("0c", 48)
	head := `measurements = ["` + a + `", "` + b + `", "` + c + `"]` + "\nprofiles = [\"staging\"]\nbackends = [\"sev-snp\"]\n"
	p, err := ParsePolicy([]byte(head + "[bundles]\nnotebook = [\"" + a + "\", \"" + strings.ToUpper(b) + "\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	for m, want := range map[string]string{a: "notebook", b: "notebook", c: ""} {
		var d [48]byte
		hex.Decode(d[:], []byte(m))
		if got, ok := p.BundleOf(d); got != want || ok != (want != "") {
			t.Errorf("BundleOf(%.4s...) = %q, %v, want %q", m, got, ok, want)
		}
	}
	for name, tc := range map[string]struct{ bundles, want string }{
		"not in measurements": {"x = [\"" + strings.Repeat("0d", 48) + "\"]", "bundles.x: 0d0d"},
		"in two bundles":      {"x = [\"" + a + "\"]\ny = [\"" + a + "\"]", "is listed for bundle"},
		"bad name":            {"\"Note Book\" = [\"" + a + "\"]", `"Note Book" is not a bundle name`},
		"long name":           {strings.Repeat("n", MaxBundleName+1) + " = [\"" + a + "\"]", "is not a bundle name"},
		"empty":               {"x = []", "bundles.x: list the measurements"},
		"bad hex":             {"x = [\"" + a[:10] + "\"]", "bundles.x: \"0a0a"},
		"not a list":          {"x = \"" + a + "\"", "line"},
	} {
		_, err := ParsePolicy([]byte(head + "[bundles]\n" + tc.bundles + "\n"))
		if !errors.Is(err, ErrPolicy) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an ErrPolicy naming %q", name, err, tc.want)
		}
	}
}
