package output

import (
	"encoding/json"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/nixflow/nixflow/event"
)

// jsonFormat is the json format: an event per line, byte for byte as
// encoding/json writes it, without reflection.
type jsonFormat struct {
	time stamp // RFC 3339 with nanoseconds, as time.Time's MarshalJSON
}

func newJSONFormat() *jsonFormat {
	return &jsonFormat{time: stamp{layout: time.RFC3339Nano}}
}

func (j *jsonFormat) appendEvent(b []byte, e *event.Event) []byte {
	if y := e.Time.Year(); y < 0 || y > 9999 {
		return appendJSON(b, e) // as encoding/json fails on it
	}
	b = j.appendFields(b, e)
	if e.Message != "" {
		b = append(b, `,"message":`...)
		b = appendJSONString(b, e.Message)
	}
	for _, f := range [...]struct{ key, val string }{{`,"result":`, string(e.Result)}, {`,"reason":`, e.Reason}} {
		if f.val != "" {
			b = append(b, f.key...)
			b = appendJSONString(b, f.val)
		}
	}
	if e.ExitCode != nil {
		b = strconv.AppendInt(append(b, `,"exitCode":`...), int64(*e.ExitCode), 10)
	}
	if e.Attempt != 0 {
		b = strconv.AppendInt(append(b, `,"attempt":`...), int64(e.Attempt), 10)
	}
	if e.Attempts != 0 {
		b = strconv.AppendInt(append(b, `,"attempts":`...), int64(e.Attempts), 10)
	}
	if e.Duration != 0 {
		b = appendJSONString(append(b, `,"duration":`...), e.Duration.String())
	}
	if e.Allowed {
		b = append(b, `,"allowed":true`...)
	}
	if e.Where != "" {
		b = appendJSONString(append(b, `,"where":`...), e.Where)
	}
	return append(b, "}\n"...)
}

func (j *jsonFormat) appendHead(b []byte, line *event.Event) ([]byte, bool) {
	if !j.plain(line) {
		return b, false
	}
	return j.appendFields(b, line), true
}

func (j *jsonFormat) appendLine(b, head, line []byte) []byte {
	return appendTail(append(b, head...), line[:len(line)-1])
}

// plain reports whether e is a line of output that the encoder writes
// itself: no field but those of output lines, a time with a 4-digit year.
func (j *jsonFormat) plain(e *event.Event) bool {
	return e.Event == event.Output && e.Result == "" && e.Reason == "" && e.ExitCode == nil &&
		e.Attempt == 0 && e.Attempts == 0 && e.Duration == 0 && !e.Allowed && e.Where == "" &&
		e.Time.Year() >= 0 && e.Time.Year() <= 9999
}

// appendFields appends the fields of a plain event before its message.
func (j *jsonFormat) appendFields(b []byte, e *event.Event) []byte {
	b = append(b, `{"time":"`...)
	b = j.time.append(b, e.Time)
	b = append(b, `","run":`...)
	b = appendJSONString(b, e.Run)
	for _, f := range [...]struct{ key, val string }{
		{`,"job":`, e.Job}, {`,"step":`, e.Step}, {`,"event":`, string(e.Event)},
		{`,"stream":`, e.Stream},
	} {
		if f.val != "" || f.key == `,"event":` {
			b = append(b, f.key...)
			b = appendJSONString(b, f.val)
		}
	}
	return b
}

// appendTail appends the message of a plain event and ends the line.
func appendTail[T string | []byte](b []byte, msg T) []byte {
	if len(msg) > 0 {
		b = append(b, `,"message":`...)
		b = appendJSONString(b, msg)
	}
	return append(b, "}\n"...)
}

// appendJSON appends e as one JSON line with encoding/json.
func appendJSON(b []byte, e *event.Event) []byte {
	data, err := json.Marshal(e)
	if err != nil {
		return b
	}
	return append(append(b, data...), '\n')
}

// decodeRune is utf8.DecodeRuneInString for a text of either type.
func decodeRune[T string | []byte](s T) (rune, int) {
	switch t := any(s).(type) {
	case string:
		return utf8.DecodeRuneInString(t)
	case []byte:
		return utf8.DecodeRune(t)
	}
	return utf8.RuneError, 0
}

const hexDigits = "0123456789abcdef"

// jsonSafe marks the bytes encoding/json writes as they are.
var jsonSafe = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendJSONString appends s quoted as encoding/json quotes it: HTML
// characters escaped, invalid UTF-8 replaced by U+FFFD, U+2028 and
// U+2029 escaped.
func appendJSONString[T string | []byte](b []byte, s T) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if jsonSafe[s[i]] {
			i++
			continue
		}
		if c := s[i]; c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := decodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
