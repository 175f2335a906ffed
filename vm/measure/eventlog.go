package measure

import (
	"bytes"
	"encoding/binary"

	"github.com/ampoule-run/ampoule/errcode"
)

// TCG event types (TCG PC Client Platform Firmware Profile, 10.4.1) of
// the events a TD's boot extends into RTMR1 and RTMR2.
const (
	EVSeparator          = 0x4
	EVEventTag           = 0x6
	EVEFIBootServicesApp = 0x80000003
	EVEFIAction          = 0x80000007
)

// TPM algorithm ids of the digests a log holds (TCG Algorithm Registry).
const (
	AlgSHA256 = 0x0b
	AlgSHA384 = 0x0c
)

// TCGEvent is one event of a crypto-agile TCG event log: the register it
// extends (a PCR, or for a TD's CC event log an MR index), its type, its
// digests by algorithm id, and its data.
type TCGEvent struct {
	PCR, Type uint32
	Digests   map[uint16][]byte
	Data      []byte
}

// maxTCGEvents bounds a log: firmware logs hold tens of events.
const maxTCGEvents = 1 << 16

// specIDEvent is the signature of a crypto-agile log's first event.
var specIDEvent = []byte("Spec ID Event03\x00")

// ParseTCGEventLog reads a crypto-agile TCG event log (TCG PC Client
// Platform Firmware Profile, 10.2): a SHA-1-format first event whose
// Spec ID Event03 names the digest algorithms and sizes, then
// TCG_PCR_EVENT2 records, up to the end of b or a zeroed record (the free
// part of a firmware's log area). A log that does not parse is E1022.
func ParseTCGEventLog(b []byte) ([]TCGEvent, error) {
	le := binary.LittleEndian
	if len(b) < 32+28 {
		return nil, logInvalid("the event log is %d bytes, shorter than its first event", len(b))
	}
	n := uint64(le.Uint32(b[28:]))
	if n > uint64(len(b)-32) || n < 28 || !bytes.Equal(b[32:48], specIDEvent) {
		return nil, logInvalid("the event log does not start with a Spec ID Event03 (it is not crypto-agile)")
	}
	spec := b[32 : 32+n]
	count := uint64(le.Uint32(spec[24:]))
	if count == 0 || count > (n-28)/4 {
		return nil, logInvalid("the Spec ID event's %d algorithms do not fit its %d bytes", count, n)
	}
	algs := map[uint16]int{}
	for i := range count {
		algs[le.Uint16(spec[28+4*i:])] = int(le.Uint16(spec[30+4*i:]))
	}
	var events []TCGEvent
	for r := b[32+n:]; len(r) >= 12; {
		pcr, typ, k := le.Uint32(r), le.Uint32(r[4:]), uint64(le.Uint32(r[8:]))
		if typ == 0 && k == 0 {
			break
		}
		if len(events) == maxTCGEvents {
			return nil, logInvalid("the event log has more than %d events", maxTCGEvents)
		}
		if k == 0 || k > uint64(len(algs)) {
			return nil, logInvalid("event %d has %d digests, the log's algorithms are %d", len(events), k, len(algs))
		}
		e := TCGEvent{PCR: pcr, Type: typ, Digests: map[uint16][]byte{}}
		r = r[12:]
		for range k {
			if len(r) < 2 {
				return nil, logInvalid("event %d is truncated in its digests", len(events))
			}
			alg := le.Uint16(r)
			size, ok := algs[alg]
			if !ok || len(r) < 2+size {
				return nil, logInvalid("event %d has a digest of algorithm %#x the log does not name, or is truncated", len(events), alg)
			}
			e.Digests[alg] = r[2 : 2+size]
			r = r[2+size:]
		}
		if len(r) < 4 || uint64(le.Uint32(r)) > uint64(len(r)-4) {
			return nil, logInvalid("event %d is truncated in its data", len(events))
		}
		size := le.Uint32(r)
		e.Data, r = r[4:4+size], r[4+size:]
		events = append(events, e)
	}
	return events, nil
}

// logInvalid is E1022 about an event log.
func logInvalid(format string, args ...any) error {
	return errcode.Errorf(errcode.EvidenceMalformed, format, args...).Host()
}
