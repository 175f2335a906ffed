package shim

// AllowedCalls maps each system call of the runner's seccomp allowlist to how
// the filter treats it, in the allowlist's own words (Describe),
// and the two calls the runner makes just before its filter applies; a
// call absent from it maps to "". Where there is no allowlist (another
// architecture) only those two are known.
func AllowedCalls() map[string]string {
	out := map[string]string{
		// An audit (shim/audit), attached before the filter, sees the calls
		// that install it.
		"prctl":   "before the filter (no_new_privs)",
		"seccomp": "before the filter (installs it)",
	}
	list, err := Allowlist()
	if err != nil {
		return out
	}
	for _, s := range list {
		out[s.Name] = s.Describe()
	}
	return out
}
