package attest

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
)

// Template is what a starter policy accepts: a bundle's reference
// measurements under the profiles it may run under, and the backends.
type Template struct {
	// Bundle and Version name the bundle, in the policy's first comment.
	Bundle, Version string
	// Measurements are the reference measurements (hex SHA-384), in
	// order, each with the profile it is the bundle's measurement under.
	Measurements []ProfileMeasurement
	// Profiles a run may have used.
	Profiles []string
	// Backends the evidence may come from: "sev-snp", "tdx", "sim".
	Backends []string
	// AllowInsecure accepts the simulator.
	AllowInsecure bool
	// SimPin, if set, is the simulator key (hex Ed25519) the policy pins;
	// empty, the policy pins none (and says nothing of sim_keys).
	SimPin string
	// Secrets are the resource paths the bundle's manifest declares: one
	// grant gives exactly these to the Measurements; none, no grant.
	Secrets []string
	// VM, if set, pins the confidential VM the bundle runs in.
	VM *VMPins
}

// VMPins are a built VM's launch values, which a policy pins so that it
// accepts the VM and not only the bundle.
type VMPins struct {
	// SNPLaunchMeasurements are expected SEV-SNP MEASUREMENTs, and
	// TDXMRTDs expected TDX MRTDs (hex); an empty list pins nothing.
	SNPLaunchMeasurements, TDXMRTDs []string
	// SNPHostData and TDXMRConfigID are the init-data's digests (hex).
	SNPHostData, TDXMRConfigID string
	// TDXRTMRs are expected RTMR0 to RTMR2 (hex); an empty one is not
	// pinned. RTMRNotes say in comments what they were checked against
	// and why a register is not pinned.
	TDXRTMRs  [3]string
	RTMRNotes []string
	// Inputs says in a comment what was measured.
	Inputs string
}

// ProfileMeasurement is a bundle's reference measurement under a profile.
type ProfileMeasurement struct {
	Profile, Measurement string
}

// WriteTemplate writes the starter policy t describes, with a comment
// before every rule and, commented out, the platform pins a tenant may
// add. It writes nothing unless the text reads back, through ParsePolicy,
// as exactly the measurements, profiles, backends, allow_insecure and
// simulator pin t says; a name that would end its comment line is
// refused. Every error but w's wraps ErrPolicy.
func WriteTemplate(w io.Writer, t Template) error {
	for _, s := range append([]string{t.Bundle, t.Version}, profilesOf(t.Measurements)...) {
		if strings.IndexFunc(s, unicode.IsControl) >= 0 {
			return fmt.Errorf("%w: the template's name %q has a control character", ErrPolicy, s)
		}
	}
	var out bytes.Buffer
	fmt.Fprintf(&out, "# Verification policy for %s %s, made by 'launch policy new'.\n", t.Bundle, t.Version)
	fmt.Fprintf(&out, "# Evidence is affirmed only if every rule below holds.\n\n")
	fmt.Fprintf(&out, "# Reference measurements: SHA-384 over module, manifest and profile\n# ('launch measure --profile P BUNDLE'). Rebuilding the bundle changes them.\nmeasurements = [\n")
	for _, m := range t.Measurements {
		fmt.Fprintf(&out, "  %q, # %s\n", m.Measurement, m.Profile)
	}
	fmt.Fprintf(&out, "]\n\n# Profiles a run may have used.\nprofiles = %s\n\n", tomlList(t.Profiles))
	fmt.Fprintf(&out, "# Backends the evidence may come from.\nbackends = %s\n\n", tomlList(t.Backends))
	fmt.Fprintf(&out, "# Accept the software simulator, which protects nothing from the host.\nallow_insecure = %v\n\n", t.AllowInsecure)
	if t.SimPin != "" {
		fmt.Fprintf(&out, "# Simulator keys accepted: this machine's ('launch platform info' prints a\n# machine's). sim_keys = \"any\" would accept anyone's simulator.\nsim_keys = [%q]\n\n", t.SimPin)
	}
	fmt.Fprintf(&out, "# Accept a TEE whose debug policy bit is set (the host could read the guest's memory).\nallow_debug = false\n\n")
	fmt.Fprintf(&out, "# The AMD processor line SEV-SNP evidence comes from (Milan, Genoa, Turin; e.g. Milan-B1).\nsnp_product = \"Milan\"\n\n")
	fmt.Fprintf(&out, "# Refuse evidence older than this.\nmax_age = %q\n\n", DefaultMaxAge.String())
	if v := t.VM; v != nil {
		for _, s := range append([]string{v.Inputs}, v.RTMRNotes...) {
			if strings.IndexFunc(s, unicode.IsControl) >= 0 {
				return fmt.Errorf("%w: the template's VM inputs %q have a control character", ErrPolicy, s)
			}
		}
		fmt.Fprintf(&out, "# The confidential VM ('launch policy new --vm'): its expected launch\n# measurements (%s) and the digests of its init-data, which it is launched with.\n", v.Inputs)
		fmt.Fprintf(&out, "snp_launch_measurements = %s\nsnp_host_data = %q\ntdx_mr_config_id = %q\n", tomlList(v.SNPLaunchMeasurements), v.SNPHostData, v.TDXMRConfigID)
		if len(v.TDXMRTDs) > 0 {
			fmt.Fprintf(&out, "# The TD's initial image (its TDVF), as the host adds it page by page or in two passes.\ntdx_mrtds = %s\n", tomlList(v.TDXMRTDs))
		}
		if v.TDXRTMRs != [3]string{} || len(v.RTMRNotes) > 0 {
			out.WriteString("# The TD's boot ('launch vm measure' lists its events): RTMR1 the kernel as QEMU\n# patched it and the firmware's boot actions, RTMR2 the command line and initramfs.\n")
			for _, n := range v.RTMRNotes {
				fmt.Fprintf(&out, "# %s\n", n)
			}
		}
		out.WriteString("\n")
	}
	pins := platformPins
	if v := t.VM; v != nil && v.TDXRTMRs != [3]string{} {
		// The pinned table comes after every top-level key a tenant may
		// uncomment, which would otherwise land inside it, and replaces
		// its commented example.
		pins = strings.Replace(pins, rtmrExample, "", 1)
	}
	out.WriteString(pins)
	if v := t.VM; v != nil && v.TDXRTMRs != [3]string{} {
		out.WriteString("\n# The TD's boot, as measured above.\n[tdx_rtmrs]\n")
		for i, r := range v.TDXRTMRs {
			if r != "" {
				fmt.Fprintf(&out, "rtmr%d = %q\n", i, r)
			}
		}
	}
	if len(t.Secrets) > 0 {
		fmt.Fprintf(&out, "\n# The secrets the bundle's manifest declares, released by a broker serving\n# this policy to runs of the measurements above (and nothing else to them).\n[[grants]]\nresources = %s\n", tomlList(t.Secrets))
		if t.AllowInsecure {
			fmt.Fprintf(&out, "# The policy accepts the simulator, so the secrets go to its runs too.\ninsecure = true\n")
		}
		out.WriteString("measurements = [\n")
		for _, m := range t.Measurements {
			fmt.Fprintf(&out, "  %q, # %s\n", m.Measurement, m.Profile)
		}
		out.WriteString("]\n")
	}
	p, err := ParsePolicy(out.Bytes())
	if err != nil {
		return fmt.Errorf("the template does not make a policy: %w", err)
	}
	if err := t.matches(p); err != nil {
		return err
	}
	if _, err := w.Write(out.Bytes()); err != nil {
		return fmt.Errorf("writing the policy: %w", err)
	}
	return nil
}

// platformPins are the platform's reference values a tenant may set, all
// commented out.
const platformPins = `# The confidential VM itself: uncomment and set these from your provider's
# published reference values (or from evidence of a VM you trust).
# SEV-SNP launch measurements (the firmware, kernel and command line the guest booted):
# snp_launch_measurements = ["<96 hex digits>"]
# SEV-SNP HOST_DATA the guest was launched with:
# snp_host_data = "<64 hex digits>"
# TDX: the TD's initial image and its configuration id:
# tdx_mrtds = ["<96 hex digits>"]
# tdx_mr_config_id = "<96 hex digits>"
# TDX: TD attributes under a mask (8 bytes as the quote holds them); this pair
# requires SEPT_VE_DISABLE set and MIGRATABLE clear:
# tdx_td_attributes = "0000001000000000"
# tdx_td_attributes_mask = "0000003000000000"
# TDX: require the run's measurement to be the last event extended into RTMR3.
# tdx_require_rtmr = true
# Lowest TCBs accepted:
# tdx_min_tee_tcb_svn = "03000000000000000000000000000000"
` + rtmrExample + `# [snp_min_tcb]
# bootloader = 3
# tee = 0
# snp = 8
# microcode = 115
`

// rtmrExample is platformPins' commented [tdx_rtmrs] table, left out
// where the template pins the table itself.
const rtmrExample = `# TDX firmware configuration, loader and kernel, OS registers:
# [tdx_rtmrs]
# rtmr0 = "<96 hex digits>"
# rtmr1 = "<96 hex digits>"
# rtmr2 = "<96 hex digits>"
`

// matches checks that p, read back from the text written for t, accepts
// what t says and nothing else.
func (t Template) matches(p *Policy) error {
	same := len(p.Measurements) == len(t.Measurements) && slices.Equal(p.Profiles, t.Profiles) &&
		slices.Equal(p.Backends, t.Backends) && p.AllowInsecure == t.AllowInsecure && !p.SimKeysAny
	for i := 0; same && i < len(t.Measurements); i++ {
		same = hex.EncodeToString(p.Measurements[i][:]) == strings.ToLower(t.Measurements[i].Measurement)
	}
	if v := t.VM; v == nil {
		same = same && len(p.SNPLaunchMeasurements) == 0 && p.SNPHostData == nil && p.TDXMRConfigID == nil && len(p.TDXMRTDs) == 0 && p.TDXRTMRs == [3]*[48]byte{}
	} else {
		for i, r := range p.TDXRTMRs {
			same = same && (r == nil) == (v.TDXRTMRs[i] == "") && (r == nil || hex.EncodeToString(r[:]) == strings.ToLower(v.TDXRTMRs[i]))
		}
		same = same && len(p.TDXMRTDs) == len(v.TDXMRTDs)
		for i := 0; same && i < len(v.TDXMRTDs); i++ {
			same = hex.EncodeToString(p.TDXMRTDs[i][:]) == strings.ToLower(v.TDXMRTDs[i])
		}
		same = same && len(p.SNPLaunchMeasurements) == len(v.SNPLaunchMeasurements) && p.SNPHostData != nil && p.TDXMRConfigID != nil &&
			hex.EncodeToString(p.SNPHostData[:]) == strings.ToLower(v.SNPHostData) && hex.EncodeToString(p.TDXMRConfigID[:]) == strings.ToLower(v.TDXMRConfigID)
		for i := 0; same && i < len(v.SNPLaunchMeasurements); i++ {
			same = hex.EncodeToString(p.SNPLaunchMeasurements[i][:]) == strings.ToLower(v.SNPLaunchMeasurements[i])
		}
	}
	if t.SimPin == "" {
		same = same && len(p.SimKeys) == 0
	} else {
		same = same && len(p.SimKeys) == 1 && hex.EncodeToString(p.SimKeys[0]) == strings.ToLower(t.SimPin)
	}
	if len(t.Secrets) == 0 {
		same = same && len(p.Grants) == 0
	} else {
		same = same && len(p.Grants) == 1 && slices.Equal(p.Grants[0].Resources, t.Secrets) &&
			slices.Equal(p.Grants[0].Measurements, p.Measurements) && len(p.Grants[0].Profiles) == 0 && len(p.Grants[0].Backends) == 0 && p.Grants[0].Insecure == t.AllowInsecure
	}
	if !same {
		return fmt.Errorf("%w: the policy written for the template reads back as another", ErrPolicy)
	}
	return nil
}

func profilesOf(ms []ProfileMeasurement) (names []string) {
	for _, m := range ms {
		names = append(names, m.Profile)
	}
	return names
}

// tomlList is items as a TOML array of basic strings on one line, as
// ["a", "b"] (a JSON string is a TOML basic string).
func tomlList(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		// A string always marshals (invalid UTF-8 as U+FFFD, which the
		// read-back check then refuses).
		b, _ := json.Marshal(s)
		quoted[i] = string(b)
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}
