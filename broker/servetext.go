package broker

import (
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"time"
)

// WriteText writes ev for the person running launch broker serve: where
// the broker answers, and its key, to stdout; warnings and reloads to
// stderr. key is the broker's public key, policyFile the policy a SIGHUP
// reads again.
func (ev Event) WriteText(stdout, stderr io.Writer, key []byte, policyFile string) {
	switch ev.Kind {
	case PlainHTTP:
		fmt.Fprintf(stderr, "launch: warning: serving plain HTTP on %s: answers are signed, but the metadata is in the clear; pass --tls-cert and --tls-key to serve beyond this machine\n", strings.TrimPrefix(ev.URL, "http://"))
	case Listening:
		fmt.Fprintf(stdout, "broker key: %s\nlistening on %s\n", hex.EncodeToString(key), ev.URL)
	case AdminServing:
		fmt.Fprintf(stdout, "audit socket: %s\n", ev.URL)
	case AdminFailed:
		// The trail stays readable once the broker stops.
		fmt.Fprintf(stderr, "launch: warning: 'launch broker audit' cannot read the trail while this broker serves: %v\n", ev.Err)
	case Reloaded:
		fmt.Fprintf(stderr, "launch: policy reloaded from %s\n", policyFile)
	case ReloadFailed:
		fmt.Fprintf(stderr, "launch: warning: the policy was not reloaded, the one served stays: %v\n", ev.Err)
	}
}

// WriteResourcesText writes one line per stored resource, as launch broker
// secret list prints them: its path, its size and when it was last
// written and first made. Values are never printed.
func WriteResourcesText(w io.Writer, list []ResourceInfo) {
	for _, r := range list {
		fmt.Fprintf(w, "%-40s %6d bytes  updated %s  created %s\n", r.Path, r.Size, r.Updated.Format(time.RFC3339), r.Created.Format(time.RFC3339))
	}
}
