package policies

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"
)

// parseJSONValue parses a JSON document straight into an AST value, the
// value ast.ValueFromReader gives, without the intermediate Go maps: every
// admission builds the policy input from the request's object, so the
// parse is on the hot path. Anything unusual (an escaped or non-UTF-8
// string is handled here through encoding/json; a duplicated key, deep
// nesting, trailing data or a syntax error) falls back to
// ast.ValueFromReader, whose result and errors stay the reference.
func parseJSONValue(raw []byte) (ast.Value, error) {
	p := jsonParser{data: raw, text: string(raw)}
	p.skipSpace()
	v, ok := p.value(0)
	if ok {
		p.skipSpace()
		if p.pos == len(p.data) {
			return v, nil
		}
	}
	return ast.ValueFromReader(bytes.NewReader(raw))
}

// maxJSONDepth bounds the nesting the parser follows itself; deeper
// documents go to the reference parser, which has its own limit.
const maxJSONDepth = 1000

type jsonParser struct {
	data []byte
	// text is data as one string: plain strings are slices of it, so
	// parsing allocates no string of its own for them.
	text string
	pos  int
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

// value parses one value at p.pos; false means "let the reference parser
// decide".
func (p *jsonParser) value(depth int) (ast.Value, bool) {
	if p.pos >= len(p.data) || depth > maxJSONDepth {
		return nil, false
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		s, ok := p.str()
		if !ok {
			return nil, false
		}
		return ast.InternedTerm(s).Value, true
	case c == 't':
		return p.literal("true", ast.Boolean(true))
	case c == 'f':
		return p.literal("false", ast.Boolean(false))
	case c == 'n':
		return p.literal("null", ast.Null{})
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	}
	return nil, false
}

func (p *jsonParser) literal(word string, v ast.Value) (ast.Value, bool) {
	if !bytes.HasPrefix(p.data[p.pos:], []byte(word)) {
		return nil, false
	}
	p.pos += len(word)
	return v, true
}

func (p *jsonParser) object(depth int) (ast.Value, bool) {
	p.pos++               // {
	var items []*ast.Term // keys and values
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return ast.NewObject(), true
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, false
		}
		k, ok := p.str()
		if !ok {
			return nil, false
		}
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, false
		}
		p.pos++
		p.skipSpace()
		v, ok := p.value(depth)
		if !ok {
			return nil, false
		}
		items = append(items, ast.InternedTerm(k), ast.NewTerm(v))
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, false
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
			continue
		case '}':
			p.pos++
			obj := ast.NewObjectWithCapacity(len(items) / 2)
			for i := 0; i < len(items); i += 2 {
				obj.Insert(items[i], items[i+1])
			}
			if obj.Len() != len(items)/2 {
				return nil, false // a duplicated key
			}
			return obj, true
		}
		return nil, false
	}
}

func (p *jsonParser) array(depth int) (ast.Value, bool) {
	p.pos++ // [
	var elems []*ast.Term
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return ast.NewArray(), true
	}
	for {
		p.skipSpace()
		v, ok := p.value(depth)
		if !ok {
			return nil, false
		}
		elems = append(elems, ast.NewTerm(v))
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, false
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
			continue
		case ']':
			p.pos++
			return ast.NewArray(elems...), true
		}
		return nil, false
	}
}

// str parses a string at p.pos. A plain one (no escape, no control
// character, valid UTF-8) is taken as is; any other is decoded by
// encoding/json, so escapes and invalid bytes read exactly as there.
func (p *jsonParser) str() (string, bool) {
	start := p.pos
	p.pos++ // "
	plain := true
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			body := p.data[start+1 : p.pos-1]
			if plain && utf8.Valid(body) {
				return p.text[start+1 : p.pos-1], true
			}
			var s string
			if err := json.Unmarshal(p.data[start:p.pos], &s); err != nil {
				return "", false
			}
			return s, true
		case c == '\\':
			plain = false
			p.pos += 2
		case c < 0x20:
			return "", false
		default:
			p.pos++
		}
	}
	return "", false
}

// number parses a number by JSON's grammar and keeps its literal, as
// json.Decoder.UseNumber does.
func (p *jsonParser) number() (ast.Value, bool) {
	start := p.pos
	digits := func() int {
		n := 0
		for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	if p.data[p.pos] == '-' {
		p.pos++
	}
	if p.pos < len(p.data) && p.data[p.pos] == '0' {
		p.pos++
	} else if digits() == 0 {
		return nil, false
	}
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		p.pos++
		if digits() == 0 {
			return nil, false
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return nil, false
		}
	}
	v, err := ast.InterfaceToValue(json.Number(p.data[start:p.pos]))
	if err != nil {
		return nil, false
	}
	return v, true
}
