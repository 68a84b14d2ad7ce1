package engine

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// The cache key of a query is the sha256 of a canonical encoding of its
// view, maskView(project(input, views), masks). keyOf writes that encoding
// straight from the input, projecting and masking as it goes, so a hit
// never builds the view: only a miss, which evaluates it, does.
//
// The encoding is injective: every value starts with a tag, strings and
// numbers carry their length, objects and arrays end with a tag no value
// starts with, and object members come in sorted key order. Equal keys
// therefore mean equal views (TestKeyOfMatchesView checks it against the
// views themselves).

// viewNode is a trie of a query's views: a node without children is a
// view, whose whole value the key covers.
type viewNode struct {
	keys     []string // sorted
	children map[string]*viewNode
	terms    map[string]*ast.Term
}

func newViewTrie(views []viewPath) *viewNode {
	root := &viewNode{}
	for _, v := range views {
		n := root
		for _, k := range v {
			if n.children == nil {
				n.children = map[string]*viewNode{}
				n.terms = map[string]*ast.Term{}
			}
			c := n.children[k]
			if c == nil {
				c = &viewNode{}
				n.children[k] = c
				n.terms[k] = ast.StringTerm(k)
				n.keys = append(n.keys, k)
			}
			n = c
		}
	}
	root.sortKeys()
	return root
}

func (n *viewNode) sortKeys() {
	sort.Strings(n.keys)
	for _, c := range n.children {
		c.sortKeys()
	}
}

// inputMasks places masks at the input's masked roots (request.object and
// request.oldObject), as maskView applies them.
func inputMasks(masks *maskNode) *maskNode {
	if masks == nil {
		return nil
	}
	request := &maskNode{children: map[string]*maskNode{}}
	for _, root := range maskedRoots {
		request.children[string(root[1].Value.(ast.String))] = masks
	}
	return &maskNode{children: map[string]*maskNode{string(maskedRoots[0][0].Value.(ast.String)): request}}
}

// child is the mask node that applies below key (nil: nothing masked).
func (n *maskNode) child(key string) *maskNode {
	if n == nil {
		return nil
	}
	if c := n.children[key]; c != nil {
		return c
	}
	return n.star
}

// Tags of the encoding.
const (
	tagString = 's'
	tagNumber = 'n'
	tagTrue   = 't'
	tagFalse  = 'f'
	tagNull   = 'z'
	tagObject = 'o'
	tagArray  = 'a'
	tagOther  = 'x'
	tagEnd    = 'e'
)

var keyBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 8192); return &b }}

// keyOf is the cache key of the query's view of the input.
func (q *cachedQuery) keyOf(in ast.Object) (cacheKey, error) { return q.key(in) }

// key writes the encoding of the view of in (an ast.Object, or Go values
// as keyOfNative takes them; appendNativeView encodes both) and hashes it.
func (q *cachedQuery) key(in any) (cacheKey, error) {
	bp := keyBuffers.Get().(*[]byte)
	buf := append((*bp)[:0], q.keyPrefix...)
	buf, err := appendNativeView(buf, in, q.trie, q.inMasks)
	if err != nil {
		return cacheKey{}, fmt.Errorf("policy %s: encode the view: %w", q.name, err)
	}
	key := sha256.Sum256(buf)
	if cap(buf) <= 1<<20 {
		*bp = buf
		keyBuffers.Put(bp)
	}
	return key, nil
}

// appendView encodes the projection of v on the views below n, masked by
// m. Like project, a prefix that is an object keeps the views' keys it
// has, and one that is not is taken whole.
func appendView(buf []byte, v ast.Value, n *viewNode, m *maskNode) ([]byte, error) {
	if n == nil || len(n.keys) == 0 {
		return appendMasked(buf, v, m)
	}
	obj, ok := v.(ast.Object)
	if !ok {
		return appendMasked(buf, v, m)
	}
	buf = append(buf, tagObject)
	var err error
	for _, k := range n.keys {
		t := obj.Get(n.terms[k])
		if t == nil {
			continue
		}
		buf = appendString(buf, k)
		if buf, err = appendView(buf, t.Value, n.children[k], m.child(k)); err != nil {
			return nil, err
		}
	}
	return append(buf, tagEnd), nil
}

// appendMasked encodes v whole, with the strings under m masked as
// maskNode.mask masks them.
func appendMasked(buf []byte, v ast.Value, m *maskNode) ([]byte, error) {
	var err error
	switch x := v.(type) {
	case ast.String:
		if m != nil && m.leaf && x != "" {
			return appendString(buf, maskedValue), nil
		}
		return appendString(buf, string(x)), nil
	case ast.Number:
		buf = append(buf, tagNumber)
		buf = binary.AppendUvarint(buf, uint64(len(x)))
		return append(buf, x...), nil
	case ast.Boolean:
		if x {
			return append(buf, tagTrue), nil
		}
		return append(buf, tagFalse), nil
	case ast.Null:
		return append(buf, tagNull), nil
	case ast.Object:
		return appendMaskedObject(buf, x, m)
	case *ast.Array:
		buf = append(buf, tagArray)
		var star *maskNode
		if m != nil {
			star = m.star
		}
		for i := range x.Len() {
			if buf, err = appendMasked(buf, x.Elem(i).Value, star); err != nil {
				return nil, err
			}
		}
		return append(buf, tagEnd), nil
	}
	// Anything else (a set) by its canonical text, which sorts elements.
	text, err := ast.NewTerm(v).AppendText(nil)
	if err != nil {
		return nil, err
	}
	buf = append(buf, tagOther)
	buf = binary.AppendUvarint(buf, uint64(len(text)))
	return append(buf, text...), nil
}

// appendMaskedObject is appendMasked for an object. Its members are
// visited by a pooled visitor whose method value is bound once, so an
// object costs no closure and no escaping variables.
func appendMaskedObject(buf []byte, x ast.Object, m *maskNode) ([]byte, error) {
	v := memberVisitors.Get().(*memberVisitor)
	if v.visit == nil {
		v.visit = v.member // bound once per pooled visitor
	}
	v.buf, v.m, v.err = append(buf, tagObject), m, nil
	x.Foreach(v.visit)
	buf, err := v.buf, v.err
	v.buf, v.m, v.err = nil, nil, nil
	memberVisitors.Put(v)
	if err != nil {
		return nil, err
	}
	return append(buf, tagEnd), nil
}

type memberVisitor struct {
	buf   []byte
	m     *maskNode
	err   error
	visit func(k, t *ast.Term)
}

var memberVisitors = sync.Pool{New: func() any { return &memberVisitor{} }}

func (v *memberVisitor) member(k, t *ast.Term) {
	if v.err != nil {
		return
	}
	var child *maskNode
	if s, ok := k.Value.(ast.String); ok {
		child = v.m.child(string(s))
		v.buf = appendString(v.buf, string(s))
	} else if v.buf, v.err = appendMasked(v.buf, k.Value, nil); v.err != nil {
		return
	}
	v.buf, v.err = appendMasked(v.buf, t.Value, child)
}

func appendString(buf []byte, s string) []byte {
	buf = append(buf, tagString)
	buf = binary.AppendUvarint(buf, uint64(len(s)))
	return append(buf, s...)
}

// keyOfNative is keyOf for an input held as Go values (map[string]any,
// []any, strings, json.Number, numbers, bools, nil) with AST values
// anywhere inside (see nativeInput): a hit then never converts the object
// to AST. It writes what keyOf writes for the AST value of the input.
func (q *cachedQuery) keyOfNative(in map[string]any) (cacheKey, error) { return q.key(in) }

func appendNativeView(buf []byte, v any, n *viewNode, m *maskNode) ([]byte, error) {
	if av, ok := v.(ast.Value); ok {
		return appendView(buf, av, n, m)
	}
	if n == nil || len(n.keys) == 0 {
		return appendNative(buf, v, m)
	}
	obj, ok := v.(map[string]any)
	if !ok {
		if labels, isLabels := v.(map[string]string); isLabels {
			obj = make(map[string]any, len(labels))
			for k, s := range labels {
				obj[k] = s
			}
		} else {
			return appendNative(buf, v, m)
		}
	}
	buf = append(buf, tagObject)
	var err error
	for _, k := range n.keys {
		child, ok := obj[k]
		if !ok {
			continue
		}
		buf = appendString(buf, k)
		if buf, err = appendNativeView(buf, child, n.children[k], m.child(k)); err != nil {
			return nil, err
		}
	}
	return append(buf, tagEnd), nil
}

// appendNative is appendMasked for Go values.
func appendNative(buf []byte, v any, m *maskNode) ([]byte, error) {
	var err error
	switch x := v.(type) {
	case ast.Value:
		return appendMasked(buf, x, m)
	case string:
		if m != nil && m.leaf && x != "" {
			return appendString(buf, maskedValue), nil
		}
		return appendString(buf, x), nil
	case json.Number, float64, int, int64, uint64:
		// The number's AST literal, as InterfaceToValue makes it.
		nv, err := ast.InterfaceToValue(x)
		if err != nil {
			return nil, err
		}
		return appendMasked(buf, nv, m)
	case bool:
		if x {
			return append(buf, tagTrue), nil
		}
		return append(buf, tagFalse), nil
	case nil:
		return append(buf, tagNull), nil
	case map[string]any:
		var scratch [32]string // most objects: no allocation
		keys := scratch[:0]
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		buf = append(buf, tagObject)
		for _, k := range keys {
			buf = appendString(buf, k)
			if buf, err = appendNative(buf, x[k], m.child(k)); err != nil {
				return nil, err
			}
		}
		return append(buf, tagEnd), nil
	case map[string]string:
		var scratch [32]string
		keys := scratch[:0]
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		buf = append(buf, tagObject)
		for _, k := range keys {
			buf = appendString(buf, k)
			buf, _ = appendNative(buf, x[k], m.child(k))
		}
		return append(buf, tagEnd), nil
	case []any:
		buf = append(buf, tagArray)
		var star *maskNode
		if m != nil {
			star = m.star
		}
		for _, e := range x {
			if buf, err = appendNative(buf, e, star); err != nil {
				return nil, err
			}
		}
		return append(buf, tagEnd), nil
	}
	// Anything else as InterfaceToValue converts it.
	nv, err := ast.InterfaceToValue(v)
	if err != nil {
		return nil, err
	}
	return appendMasked(buf, nv, m)
}
