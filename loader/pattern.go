package loader

// A pattern is the shape of a name the manifest accepts: a fixed prefix,
// then one byte from first, then bytes from rest, between min and max
// bytes after the prefix in all (max 0: no bound). It says what a regular
// expression such as ^[a-z0-9][a-z0-9._-]{0,63}$ says, checked without
// compiling one: the regexp package compiles a bounded repeat into that many
// copies, and every process of the launcher, the runner included, paid for
// compiling them at start-up (about a tenth of the runner's package
// initialisation) whether it parsed a manifest or not.
type pattern struct {
	prefix      string
	first, rest byteSet
	min, max    int
}

// A byteSet is a set of ASCII bytes.
type byteSet [2]uint64

// bytesOf is the set of the bytes s lists, where x-y is the range from x
// to y; a '-' first or last stands for itself.
func bytesOf(s string) byteSet {
	var set byteSet
	for i := 0; i < len(s); i++ {
		lo, hi := s[i], s[i]
		if i+2 < len(s) && s[i+1] == '-' {
			hi = s[i+2]
			i += 2
		}
		for c := int(lo); c <= int(hi); c++ {
			set[c/64] |= 1 << (c % 64)
		}
	}
	return set
}

func (s *byteSet) has(c byte) bool { return c < 128 && s[c/64]&(1<<(c%64)) != 0 }

// match reports whether s has the pattern's shape.
func (p *pattern) match(s string) bool {
	if len(s) < len(p.prefix) || s[:len(p.prefix)] != p.prefix {
		return false
	}
	s = s[len(p.prefix):]
	if len(s) < max(p.min, 1) || p.max > 0 && len(s) > p.max || !p.first.has(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		if !p.rest.has(s[i]) {
			return false
		}
	}
	return true
}

var (
	// namePattern is a manifest's name: ^[a-z0-9][a-z0-9._-]{0,63}$.
	namePattern = pattern{first: bytesOf("a-z0-9"), rest: bytesOf("a-z0-9._-"), max: 64}
	// recipientPattern is a log recipient: ^alog1[0-9a-f]{64}$.
	recipientPattern = pattern{prefix: "alog1", first: bytesOf("0-9a-f"), rest: bytesOf("0-9a-f"), min: 64, max: 64}
	// entryPattern is a reactor's entry: ^[A-Za-z_][A-Za-z0-9_.$-]{0,127}$.
	entryPattern = pattern{first: bytesOf("A-Za-z_"), rest: bytesOf("A-Za-z0-9_.$-"), max: 128}
	// envNamePattern is an environment variable's name: ^[A-Za-z_][A-Za-z0-9_]*$.
	envNamePattern = pattern{first: bytesOf("A-Za-z_"), rest: bytesOf("A-Za-z0-9_")}
	// secretNamePattern is a secret's guest name, a file name in
	// SecretsDir: ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$.
	secretNamePattern = pattern{first: bytesOf("A-Za-z0-9"), rest: bytesOf("A-Za-z0-9._-"), max: 64}
)
