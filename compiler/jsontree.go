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
	str     string  // kindString; kindNumber: as written
	boolean bool    // kindBool
	elems   []*node // kindArray
	fields  []field // kindObject, in document order
	// lazy marks an object whose syntax was checked but which was not
	// built: parseValue builds it when it is needed.
	lazy bool
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

// parseWorkflow parses a workflow document. It is strict: duplicate keys
// are reported as errors by the decoder, trailing data is a syntax error.
// The values of the jobs object that are objects have their syntax
// checked, but are left lazy, to be built one at a time by parseValue, so
// that the tree of a graph of thousands of jobs never exists whole.
// The parser it returns builds the lazy values (valueAt).
func parseWorkflow(data []byte) (*node, *jsonParser, error) {
	p := &jsonParser{data: data, lazyJobs: true}
	n, err := p.document()
	return n, p, err
}

// valueAt builds the value at offset, at the depth given (lazy nodes'
// values are at depth 2).
func (p *jsonParser) valueAt(offset, depth int) (*node, error) {
	p.pos = offset
	p.lazyJobs, p.inJobs = false, false
	return p.value(depth)
}

func (p *jsonParser) document() (*node, error) {
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
	// lazyJobs leaves the jobs of a workflow lazy; inJobs is set while
	// the jobs object is parsed.
	lazyJobs, inJobs bool
	// fields and elems are stacks of the members of the objects and
	// arrays being parsed: each gets a slice of its exact size at its
	// end, not one grown (and thrown away) member by member.
	fields []field
	elems  []*node
	// slab is where nodes come from, many per allocation.
	slab []node
	// keys holds the object keys met so far (the same few dozen in
	// every job), so that each is allocated once.
	keys map[string]string
}

// maxKeys bounds keys: a document of unique keys only fills it.
const maxKeys = 4096

// newNode returns a node with the kind and offset given.
func (p *jsonParser) newNode(k kind, offset int) *node {
	if len(p.slab) == 0 {
		p.slab = make([]node, 128)
	}
	n := &p.slab[0]
	p.slab = p.slab[1:]
	n.kind, n.offset = k, offset
	return n
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
		n := p.newNode(kindString, start)
		n.str = s
		return n, nil
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case p.literal("true"):
		n := p.newNode(kindBool, start)
		n.boolean = true
		return n, nil
	case p.literal("false"):
		return p.newNode(kindBool, start), nil
	case p.literal("null"):
		return p.newNode(kindNull, start), nil
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
	n := p.newNode(kindObject, p.pos)
	p.pos++ // {
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return n, nil
	}
	base := len(p.fields)
	defer func() { p.fields = p.fields[:base] }()
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.errorf("unexpected %s, expecting a quoted key", p.describe())
		}
		keyOff := p.pos
		key, err := p.key()
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.errorf("unexpected %s, expecting ':' after key %q", p.describe(), key)
		}
		p.pos++
		p.skipSpace()
		var v *node
		switch {
		case depth == 1 && p.inJobs && p.pos < len(p.data) && p.data[p.pos] == '{':
			v, err = p.lazyObject(depth + 1)
		case depth == 0 && p.lazyJobs && key == "jobs":
			p.inJobs = true
			v, err = p.value(depth + 1)
			p.inJobs = false
		default:
			v, err = p.value(depth + 1)
		}
		if err != nil {
			return nil, err
		}
		p.fields = append(p.fields, field{key: key, offset: keyOff, value: v})
		p.skipSpace()
		if p.pos < len(p.data) && p.data[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.data) && p.data[p.pos] == '}' {
			p.pos++
			n.fields = append([]field(nil), p.fields[base:]...)
			return n, nil
		}
		return nil, p.errorf("unexpected %s, expecting ',' or '}'", p.describe())
	}
}

func (p *jsonParser) array(depth int) (*node, error) {
	n := p.newNode(kindArray, p.pos)
	p.pos++ // [
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return n, nil
	}
	base := len(p.elems)
	defer func() { p.elems = p.elems[:base] }()
	for {
		p.skipSpace()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		p.elems = append(p.elems, v)
		p.skipSpace()
		if p.pos < len(p.data) && p.data[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.data) && p.data[p.pos] == ']' {
			p.pos++
			n.elems = append([]*node(nil), p.elems[base:]...)
			return n, nil
		}
		return nil, p.errorf("unexpected %s, expecting ',' or ']'", p.describe())
	}
}

// string scans a string literal and decodes it with encoding/json, which
// knows every escape rule; the scan only finds where it ends.
func (p *jsonParser) string() (string, error) {
	start := p.pos
	plain, err := p.scanString()
	if err != nil {
		return "", err
	}
	raw := p.data[start:p.pos]
	if plain {
		return string(raw[1 : len(raw)-1]), nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", &syntaxError{offset: start, msg: "invalid string literal"}
	}
	return s, nil
}

// key is string for an object's key, each distinct key allocated once.
func (p *jsonParser) key() (string, error) {
	start := p.pos
	plain, err := p.scanString()
	if err != nil || !plain {
		p.pos = start
		return p.string()
	}
	raw := p.data[start+1 : p.pos-1]
	if k, ok := p.keys[string(raw)]; ok {
		return k, nil
	}
	k := string(raw)
	if p.keys == nil {
		p.keys = make(map[string]string)
	}
	if len(p.keys) < maxKeys {
		p.keys[k] = k
	}
	return k, nil
}

// scanString moves past a string literal, and reports whether it is plain:
// valid UTF-8 without escapes, its text between the quotes as it stands.
func (p *jsonParser) scanString() (plain bool, err error) {
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
			return !escaped && utf8.Valid(p.data[start+1:p.pos-1]), nil
		case c < 0x20:
			return false, p.errorf("control character in string literal")
		default:
			p.pos++
		}
	}
	return false, &syntaxError{offset: start, msg: "unterminated string literal"}
}

// numberSpan moves past the characters a number literal may hold and
// returns them; whether they make a number is json.Valid's to say.
func (p *jsonParser) numberSpan() []byte {
	start := p.pos
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			p.pos++
			continue
		}
		break
	}
	return p.data[start:p.pos]
}

func (p *jsonParser) number() (*node, error) {
	start := p.pos
	raw := string(p.numberSpan())
	if !json.Valid([]byte(raw)) {
		return nil, &syntaxError{offset: start, msg: fmt.Sprintf("invalid number %q", raw)}
	}
	n := p.newNode(kindNumber, start)
	n.str = raw
	return n, nil
}

// lazyObject checks the syntax of the object at p.pos and returns a lazy
// node for it. Where the check fails, the object is parsed, which says
// exactly what is wrong.
func (p *jsonParser) lazyObject(depth int) (*node, error) {
	start := p.pos
	if p.skip(depth) {
		n := p.newNode(kindObject, start)
		n.lazy = true
		return n, nil
	}
	p.pos = start
	return p.value(depth)
}

// skip moves past one value and reports whether its syntax is valid,
// building nothing. It never accepts what value rejects.
func (p *jsonParser) skip(depth int) bool {
	if depth > maxDepth || p.pos >= len(p.data) {
		return false
	}
	switch c := p.data[p.pos]; {
	case c == '{' || c == '[':
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		p.pos++
		p.skipSpace()
		if p.pos < len(p.data) && p.data[p.pos] == end {
			p.pos++
			return true
		}
		for {
			p.skipSpace()
			if c == '{' {
				if p.pos >= len(p.data) || p.data[p.pos] != '"' || !p.skipString() {
					return false
				}
				p.skipSpace()
				if p.pos >= len(p.data) || p.data[p.pos] != ':' {
					return false
				}
				p.pos++
				p.skipSpace()
			}
			if !p.skip(depth + 1) {
				return false
			}
			p.skipSpace()
			if p.pos < len(p.data) && p.data[p.pos] == ',' {
				p.pos++
				continue
			}
			if p.pos < len(p.data) && p.data[p.pos] == end {
				p.pos++
				return true
			}
			return false
		}
	case c == '"':
		return p.skipString()
	case c == '-' || (c >= '0' && c <= '9'):
		return json.Valid(p.numberSpan())
	default:
		return p.literal("true") || p.literal("false") || p.literal("null")
	}
}

// skipString moves past a string literal and reports whether string
// would accept it.
func (p *jsonParser) skipString() bool {
	start := p.pos
	plain, err := p.scanString()
	if err != nil {
		return false
	}
	if plain {
		return true
	}
	var s string
	return json.Unmarshal(p.data[start:p.pos], &s) == nil
}
