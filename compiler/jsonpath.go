package compiler

import "strconv"

// jsonPath is where a value is in the document, such as
// jobs.build.steps[0].env, for messages. Decoders take it by value and make
// a child with field or elem, which points to its parent: the elements live
// on the stack of the decoder's calls, and the text is built only when a
// message needs it (String). A path kept past the call that made it must be
// detached. The zero jsonPath is the document's root.
type jsonPath struct {
	parent  *jsonPath // nil at the root
	key     string    // an object's key; at the root, text before the path (see detached)
	index   int       // an array's index, when isIndex
	isIndex bool
}

// field returns the path of the value of key in the object at p.
func (p *jsonPath) field(key string) jsonPath { return jsonPath{parent: p, key: key} }

// elem returns the path of element i of the array at p.
func (p *jsonPath) elem(i int) jsonPath { return jsonPath{parent: p, index: i, isIndex: true} }

// detached returns a path of p's text without parents, for a path kept
// where p's elements may no longer be.
func (p *jsonPath) detached() jsonPath { return jsonPath{key: p.String()} }

// pathOf returns the path of the object keys keys from the root, for
// messages about what was decoded earlier.
func pathOf(keys ...string) jsonPath {
	p := &jsonPath{}
	for _, k := range keys {
		child := p.field(k)
		p = &child
	}
	return *p
}

// String returns the path's text: keys joined by '.', or written
// ["quoted"] when they are not plain identifiers, and indexes as [i]. The
// root's text is "" (a detached path's, the text it was given).
func (p *jsonPath) String() string { return string(p.appendTo(nil)) }

func (p *jsonPath) appendTo(b []byte) []byte {
	if p.parent == nil {
		return append(b, p.key...)
	}
	b = p.parent.appendTo(b)
	switch {
	case p.isIndex:
		b = append(b, '[')
		b = strconv.AppendInt(b, int64(p.index), 10)
		return append(b, ']')
	case !plainKey(p.key):
		b = append(b, '[')
		b = strconv.AppendQuote(b, p.key)
		return append(b, ']')
	case len(b) > 0:
		b = append(b, '.')
	}
	return append(b, p.key...)
}

// plainKey reports whether key is written bare in a path: letters, digits,
// '_' and '-', not starting with a digit or '-'.
func plainKey(key string) bool {
	for i := 0; i < len(key); i++ {
		c := key[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case i > 0 && (c == '-' || c >= '0' && c <= '9'):
		default:
			return false
		}
	}
	return key != ""
}
