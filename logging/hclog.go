package logging

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// RuntimeLogger returns the root of the runtime's logger tree. Its records
// go to w (the tenant's channel), as runtime records at their level, when w
// is not nil; otherwise to out (a developer's terminal). level bounds what is
// kept; asJSON chooses JSON over text.
func RuntimeLogger(w *Writer, out io.Writer, level hclog.Level, asJSON bool) hclog.Logger {
	if w == nil {
		return hclog.New(&hclog.LoggerOptions{
			Name:       "launch",
			Level:      level,
			Output:     out,
			JSONFormat: asJSON,
			Color:      hclog.ColorOff,
		})
	}
	l := hclog.NewInterceptLogger(&hclog.LoggerOptions{Name: "launch", Level: level, Output: io.Discard})
	l.RegisterSink(&channelSink{w: w, json: asJSON, level: level})
	return l
}

// channelSink turns hclog entries into sealed runtime records.
type channelSink struct {
	w     *Writer
	json  bool
	level hclog.Level
}

// Accept implements hclog.SinkAdapter.
func (s *channelSink) Accept(name string, level hclog.Level, msg string, args ...interface{}) {
	if level < s.level {
		return
	}
	var text string
	if s.json {
		m := map[string]any{"@module": name, "@level": level.String(), "@message": msg}
		for i := 0; i+1 < len(args); i += 2 {
			m[fmt.Sprint(args[i])] = fmt.Sprint(args[i+1])
		}
		b, _ := json.Marshal(m)
		text = string(b)
	} else {
		var b strings.Builder
		fmt.Fprintf(&b, "[%s] %s: %s", strings.ToUpper(level.String()), name, msg)
		for i := 0; i+1 < len(args); i += 2 {
			fmt.Fprintf(&b, " %v=%v", args[i], args[i+1])
		}
		text = b.String()
	}
	s.w.Log(levelOf(level), SourceRuntime, []byte(text))
}

func levelOf(l hclog.Level) Level {
	switch {
	case l <= hclog.Trace:
		return LevelTrace
	case l == hclog.Debug:
		return LevelDebug
	case l == hclog.Info:
		return LevelInfo
	case l == hclog.Warn:
		return LevelWarn
	}
	return LevelError
}
