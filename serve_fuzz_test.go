package ampoule

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"testing"

	"github.com/ampoule-run/ampoule/errcode"
)

// frames concatenates frames.
func frames(fs ...[]any) []byte {
	var b bytes.Buffer
	for _, f := range fs {
		writeFrame(&b, f[0].(byte), f[1].([]byte))
	}
	return b.Bytes()
}

// FuzzServeFrames: whatever bytes cross the socket, reading them as frames,
// requests and results never panics; a frame is never longer than
// maxFrame; an accepted request names an absolute bundle; a result's
// error is always a registered code, and what writeFrame wrote reads back
// the same.
func FuzzServeFrames(f *testing.F) {
	req, _ := json.Marshal(wireRequest{Path: "/b", Profile: "debug", Args: []string{"a"}, Dirs: nil, Stdout: true})
	res, _ := json.Marshal(wireResult{ExitCode: 3, Ref: "0123456789abcdef", Err: toWire(errcode.Errorf(errcode.WorkloadExit, "x").WithHint("h"))})
	f.Add(frames([]any{byte(frameRequest), req}, []any{byte(frameStdin), []byte("in")}))
	f.Add(frames([]any{byte(frameStdout), []byte("out")}, []any{byte(frameResult), res}))
	f.Add(frames([]any{byte(frameResult), []byte(`{"err":{"code":99999,"msg":"m"}}`)}))
	f.Add([]byte{frameLog, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bytes.NewReader(data)
		for {
			typ, payload, err := readFrame(r)
			if err != nil {
				if !errors.Is(err, errFrame) && err != io.EOF && err != io.ErrUnexpectedEOF {
					t.Fatalf("an error that is neither a malformed frame nor an end: %v", err)
				}
				return
			}
			if len(payload) > maxFrame {
				t.Fatalf("a frame of %d bytes", len(payload))
			}
			var b bytes.Buffer
			if err := writeFrame(&b, typ, payload); err != nil {
				t.Fatal(err)
			}
			if t2, p2, err := readFrame(&b); err != nil || t2 != typ || !bytes.Equal(p2, payload) {
				t.Fatalf("a frame does not read back: %v", err)
			}
			switch typ {
			case frameRequest:
				if q, err := decodeRequest(payload); err == nil && (q.Path == "" || q.Path[0] != '/') {
					t.Fatalf("accepted a request for %q", q.Path)
				}
			case frameResult, frameLogOpen:
				w, err := decodeResult(payload)
				if err != nil {
					continue
				}
				_, rerr := w.result(Result{})
				if rerr != nil && !errcode.From(rerr).Code.Registered() {
					t.Fatalf("an unregistered code: %v", rerr)
				}
			}
		}
	})
}
