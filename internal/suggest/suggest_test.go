package suggest

import "testing"

// TestDistance holds Distance to known answers, symmetric both ways.
func TestDistance(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"", "abc", 3}, {"run", "run", 0}, {"rn", "run", 1},
		{"profle", "profile", 1}, {"kitten", "sitting", 3}, {"flaw", "lawn", 2},
		{"wall_tmie", "wall_time", 2}, {"héllo", "hello", 1},
	} {
		if got := Distance(c.a, c.b); got != c.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := Distance(c.b, c.a); got != c.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", c.b, c.a, got, c.want)
		}
	}
}

// TestNearest suggests within two edits (one for a short word), the
// nearest first, and never the word itself or something far.
func TestNearest(t *testing.T) {
	words := []string{"run", "measure", "profiles", "profile", "verify", "version"}
	for _, c := range []struct {
		word, want string
	}{
		{"rn", "run"}, {"profle", "profile"}, {"profils", "profiles"}, {"verson", "version"},
		{"run", ""}, {"keygen", ""}, {"x", ""}, {"ru", "run"}, {"zz", ""}, {"", ""},
	} {
		got, ok := Nearest(c.word, words)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("Nearest(%q) = %q, %v; want %q", c.word, got, ok, c.want)
		}
	}
}
