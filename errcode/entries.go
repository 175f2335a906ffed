package errcode

import "fmt"

// Entry is one registered code as tools list it: its number as the host
// sees it (E####) and bare, its stable name, its class and that class's
// exit status, its public text and its default hint.
type Entry struct {
	Code       string `json:"code"`
	Number     int    `json:"number"`
	Name       string `json:"name"`
	Class      string `json:"class"`
	ExitStatus int    `json:"exit_status"`
	Text       string `json:"text"`
	Hint       string `json:"hint,omitempty"`
}

// Entries is every registered code's Entry, in the order of All.
func Entries() []Entry {
	var out []Entry
	for _, c := range All() {
		out = append(out, Entry{fmt.Sprintf("E%04d", int(c)), int(c), c.Name(), c.Class().String(), c.Class().ExitStatus(), c.Text(), c.Hint()})
	}
	return out
}
