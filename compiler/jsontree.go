package compiler

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// kind is the JSON type of a node.
type kind int

const (
	kindNull kind = iota
	kindBool
	kindNumber
	kindString
	kindArray
	kindObject
)

func (k kind) String() string {
	return [...]string{"null", "boolean", "number", "string", "array", "object"}[k]
}

// node is a JSON value with the byte offset where it starts, so that every
// problem found while decoding can be reported at its position.
type node struct {
	kind    kind
	offset  int
	str     string  // kindString
	num     string  // kindNumber, as written
	boolean bool    // kindBool
	elems   []*node // kindArray
	fields  []field // kindObject, in document order
}

type field struct {
	key    string
	offset int // of the key
	value  *node
}

// get returns the value of an object's key, or nil.
func (n *node) get(key string) *node {
	for _, f := range n.fields {
		if f.key == key {
			return f.value
		}
	}
	return nil
}

// syntaxError is a JSON syntax error at a byte offset.
type syntaxError struct {
	offset int
	msg    string
}

func (e *syntaxError) Error() string { return e.msg }

// parseJSON parses one JSON document. It is strict: duplicate keys are
// reported as errors by the decoder, trailing data is a syntax error.
func parseJSON(data []byte) (*node, error) {
	p := &jsonParser{data: data}
	p.skipSpace()
	n, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos < len(p.data) {
		return nil, p.errorf("unexpected %s after the document", p.describe())
	}
	return n, nil
}

type jsonParser struct {
	data []byte
	pos  int
}

// maxDepth bounds nesting so that hostile input cannot exhaust the stack.
const maxDepth = 512

func (p *jsonParser) errorf(format string, args ...any) error {
	return &syntaxError{offset: p.pos, msg: fmt.Sprintf(format, args...)}
}

func (p *jsonParser) describe() string {
	if p.pos >= len(p.data) {
		return "end of input"
	}
	r, _ := utf8.DecodeRune(p.data[p.pos:])
	return strconv.QuoteRune(r)
}

func (p *jsonParser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (*node, error) {
	if depth > maxDepth {
		return nil, p.errorf("nesting deeper than %d levels", maxDepth)
	}
	if p.pos >= len(p.data) {
		return nil, p.errorf("unexpected end of input, expecting a value")
	}
	start := p.pos
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		s, err := p.string()
		if err != nil {
			return nil, err
		}
		return &node{kind: kindString, offset: start, str: s}, nil
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case p.literal("true"):
		return &node{kind: kindBool, offset: start, boolean: true}, nil
	case p.literal("false"):
		return &node{kind: kindBool, offset: start}, nil
	case p.literal("null"):
		return &node{kind: kindNull, offset: start}, nil
	default:
		return nil, p.errorf("unexpected %s, expecting a value", p.describe())
	}
}

func (p *jsonParser) literal(word string) bool {
	if len(p.data)-p.pos >= len(word) && string(p.data[p.pos:p.pos+len(word)]) == word {
		p.pos += len(word)
		return true
	}
	return false
}

func (p *jsonParser) object(depth int) (*node, error) {
	n := &node{kind: kindObject, offset: p.pos}
	p.pos++ // {
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return n, nil
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.errorf("unexpected %s, expecting a quoted key", p.describe())
		}
		keyOff := p.pos
		key, err := p.string()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.errorf("unexpected %s, expecting ':' after key %q", p.describe(), key)
		}
		p.pos++
		p.skipSpace()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		n.fields = append(n.fields, field{key: key, offset: keyOff, value: v})
		p.skipSpace()
		if p.pos < len(p.data) && p.data[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.data) && p.data[p.pos] == '}' {
			p.pos++
			return n, nil
		}
		return nil, p.errorf("unexpected %s, expecting ',' or '}'", p.describe())
	}
}

func (p *jsonParser) array(depth int) (*node, error) {
	n := &node{kind: kindArray, offset: p.pos}
	p.pos++ // [
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return n, nil
	}
	for {
		p.skipSpace()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		n.elems = append(n.elems, v)
		p.skipSpace()
		if p.pos < len(p.data) && p.data[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.data) && p.data[p.pos] == ']' {
			p.pos++
			return n, nil
		}
		return nil, p.errorf("unexpected %s, expecting ',' or ']'", p.describe())
	}
}

// string scans a string literal and decodes it with encoding/json, which
// knows every escape rule; the scan only finds where it ends.
func (p *jsonParser) string() (string, error) {
	start := p.pos
	p.pos++ // opening quote
	escaped := false
	for p.pos < len(p.data) {
		switch c := p.data[p.pos]; {
		case c == '\\':
			escaped = true
			p.pos += 2
		case c == '"':
			p.pos++
			raw := p.data[start+1 : p.pos-1]
			if !escaped && utf8.Valid(raw) {
				return string(raw), nil
			}
			var s string
			if err := json.Unmarshal(p.data[start:p.pos], &s); err != nil {
				return "", &syntaxError{offset: start, msg: "invalid string literal"}
			}
			return s, nil
		case c < 0x20:
			return "", p.errorf("control character in string literal")
		default:
			p.pos++
		}
	}
	return "", &syntaxError{offset: start, msg: "unterminated string literal"}
}

func (p *jsonParser) number() (*node, error) {
	start := p.pos
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			p.pos++
			continue
		}
		break
	}
	raw := string(p.data[start:p.pos])
	if !json.Valid([]byte(raw)) {
		return nil, &syntaxError{offset: start, msg: fmt.Sprintf("invalid number %q", raw)}
	}
	return &node{kind: kindNumber, offset: start, num: raw}, nil
}
