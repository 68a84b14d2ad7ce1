package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
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
	v, _, err := parseJSONValueExact(raw)
	return v, err
}

// parseJSONValueExact is parseJSONValue, also reporting whether the
// document was read by the parser here (exact): it then has no duplicated
// key, no trailing data and no syntax error, so its AST value determines
// how any JSON decoder reads it (see Object).
func parseJSONValueExact(raw []byte) (ast.Value, bool, error) {
	p := jsonParser{data: raw, text: string(raw), stack: make([]*ast.Term, 0, 64)}
	p.skipSpace()
	v, ok := p.value(0)
	if ok {
		p.skipSpace()
		if p.pos == len(p.data) {
			return v, true, nil
		}
	}
	v, err := ast.ValueFromReader(bytes.NewReader(raw))
	return v, false, err
}

// ParseJSONObject parses a JSON object into Go values as encoding/json
// with UseNumber decodes it (map[string]any, []any, string, json.Number,
// bool, nil), without encoding/json's reflection. exact reports that the
// parser here read it: no key is duplicated, so the result is the whole
// document (encoding/json keeps the last of duplicated keys silently, and
// is then the reference for the result and errors).
func ParseJSONObject(raw []byte) (obj map[string]any, exact bool, err error) {
	p := jsonParser{data: raw, text: string(raw)}
	p.skipSpace()
	if v, ok := p.native(0); ok {
		p.skipSpace()
		if m, isObj := v.(map[string]any); isObj && p.pos == len(p.data) {
			return m, true, nil
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&obj); err != nil {
		return nil, false, err
	}
	if obj == nil {
		return nil, false, errors.New("not a JSON object")
	}
	return obj, false, nil
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
	// stack holds the members of the objects and arrays being parsed,
	// innermost last: each takes its own from the top when it ends, so
	// parsing grows one slice instead of one per object.
	stack []*ast.Term
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

// sep reads what follows an object member or an array element: a comma
// (more follows) or closer (the end).
func (p *jsonParser) sep(closer byte) (more, ok bool) {
	p.skipSpace()
	if p.pos >= len(p.data) {
		return false, false
	}
	switch p.data[p.pos] {
	case ',':
		p.pos++
		return true, true
	case closer:
		p.pos++
		return false, true
	}
	return false, false
}

// key reads an object member's key and the colon after it, leaving p at
// the member's value.
func (p *jsonParser) key() (string, bool) {
	p.skipSpace()
	if p.pos >= len(p.data) || p.data[p.pos] != '"' {
		return "", false
	}
	k, ok := p.str()
	if !ok {
		return "", false
	}
	p.skipSpace()
	if p.pos >= len(p.data) || p.data[p.pos] != ':' {
		return "", false
	}
	p.pos++
	p.skipSpace()
	return k, true
}

func (p *jsonParser) object(depth int) (ast.Value, bool) {
	p.pos++               // {
	start := len(p.stack) // keys and values from here
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return ast.NewObject(), true
	}
	for {
		k, ok := p.key()
		if !ok {
			return nil, false
		}
		v, ok := p.value(depth)
		if !ok {
			return nil, false
		}
		p.stack = append(p.stack, ast.InternedTerm(k), ast.NewTerm(v))
		if more, ok := p.sep('}'); !ok {
			return nil, false
		} else if more {
			continue
		}
		items := p.stack[start:]
		obj := ast.NewObjectWithCapacity(len(items) / 2)
		for i := 0; i < len(items); i += 2 {
			obj.Insert(items[i], items[i+1])
		}
		clear(items)
		p.stack = p.stack[:start]
		if obj.Len() != len(items)/2 {
			return nil, false // a duplicated key
		}
		return obj, true
	}
}

func (p *jsonParser) array(depth int) (ast.Value, bool) {
	p.pos++ // [
	start := len(p.stack)
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
		p.stack = append(p.stack, ast.NewTerm(v))
		if more, ok := p.sep(']'); !ok {
			return nil, false
		} else if more {
			continue
		}
		elems := slices.Clone(p.stack[start:])
		clear(p.stack[start:])
		p.stack = p.stack[:start]
		return ast.NewArray(elems...), true
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
	if !p.scanNumber() {
		return nil, false
	}
	v, err := ast.InterfaceToValue(json.Number(p.data[start:p.pos]))
	if err != nil {
		return nil, false
	}
	return v, true
}

// scanNumber moves past a number by JSON's grammar.
func (p *jsonParser) scanNumber() bool {
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
		return false
	}
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		p.pos++
		if digits() == 0 {
			return false
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return false
		}
	}
	return true
}

// native parses one value at p.pos into Go values (see ParseJSONObject);
// false means "let encoding/json decide".
func (p *jsonParser) native(depth int) (any, bool) {
	if p.pos >= len(p.data) || depth > maxJSONDepth {
		return nil, false
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.nativeObject(depth + 1)
	case c == '[':
		return p.nativeArray(depth + 1)
	case c == '"':
		return p.str()
	case c == 't':
		return p.nativeLiteral("true", true)
	case c == 'f':
		return p.nativeLiteral("false", false)
	case c == 'n':
		return p.nativeLiteral("null", nil)
	case c == '-' || (c >= '0' && c <= '9'):
		start := p.pos
		if !p.scanNumber() {
			return nil, false
		}
		return json.Number(p.text[start:p.pos]), true
	}
	return nil, false
}

func (p *jsonParser) nativeLiteral(word string, v any) (any, bool) {
	if !bytes.HasPrefix(p.data[p.pos:], []byte(word)) {
		return nil, false
	}
	p.pos += len(word)
	return v, true
}

func (p *jsonParser) nativeObject(depth int) (any, bool) {
	p.pos++ // {
	obj := map[string]any{}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return obj, true
	}
	for {
		k, ok := p.key()
		if !ok {
			return nil, false
		}
		v, ok := p.native(depth)
		if !ok {
			return nil, false
		}
		if _, dup := obj[k]; dup {
			return nil, false // a duplicated key
		}
		obj[k] = v
		if more, ok := p.sep('}'); !ok {
			return nil, false
		} else if !more {
			return obj, true
		}
	}
}

func (p *jsonParser) nativeArray(depth int) (any, bool) {
	p.pos++ // [
	elems := []any{}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return elems, true
	}
	for {
		p.skipSpace()
		v, ok := p.native(depth)
		if !ok {
			return nil, false
		}
		elems = append(elems, v)
		if more, ok := p.sep(']'); !ok {
			return nil, false
		} else if !more {
			return elems, true
		}
	}
}
