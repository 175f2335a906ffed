// Package suggest finds the word a user most likely meant: the nearest of
// a few known words by Levenshtein distance, for "did you mean" hints.
package suggest

// MaxDistance is the largest edit distance Nearest suggests across.
const MaxDistance = 2

// Nearest returns the candidate nearest to word by edit distance, if one
// is at most MaxDistance edits away and not word itself; ties go to the
// earlier candidate. A word of one or two letters is matched only at
// distance one, so that short words do not suggest everything.
func Nearest(word string, candidates []string) (string, bool) {
	best, bestD := "", MaxDistance+1
	limit := MaxDistance
	if len([]rune(word)) <= 2 {
		limit = 1
	}
	for _, c := range candidates {
		if c == word {
			continue
		}
		if d := Distance(word, c); d <= limit && d < bestD {
			best, bestD = c, d
		}
	}
	return best, best != ""
}

// Distance is the Levenshtein distance between a and b: the fewest
// insertions, deletions and substitutions of one rune that turn a into b.
func Distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
