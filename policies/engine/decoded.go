package engine

import (
	"encoding"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// Decoding vouched for by the view. A handler decodes every object
// strictly as its kind (webhook.DecodeStrict: unknown and duplicated
// fields refused, case-sensitive keys) before it trusts it. That decode
// reads nothing the cached query's view hides, when:
//   - the object was parsed exactly (no duplicated key, no trailing data:
//     parseJSONValueExact, ParseJSONObject), so its parsed value is the
//     whole document, and a strict decode's outcome is a function of it;
//   - the view covers the whole object (request.object is a view), and
//     the request's kind (checked by the handler) is in the view;
//   - every masked path ends, in the kind's Go type, at a plain string
//     field, or at no field at all (masksKeepDecoding): replacing one
//     non-empty string there by another cannot change whether the object
//     decodes.
// Objects with one cache key then decode alike: once one of them decoded
// strictly (MarkDecoded), the decision vouches for the others
// (DecodeVouched), and the handler skips the typed decode.

// Object is a request's object parsed once (ParseObject): the handler
// reads its metadata and the engine its AST value, without a second parse.
type Object struct {
	value ast.Object
	exact bool
	// mark is set by Validate: whether its decision vouches for the
	// object's strict decoding.
	mark decodeMark
}

// DecodeVouched reports, after Policy.Validate, whether an object of the
// same view already decoded strictly, which vouches for this one.
func (o *Object) DecodeVouched() bool { return o.mark.DecodeVouched() }

// MarkDecoded records, after Policy.Validate, that this object decoded
// strictly.
func (o *Object) MarkDecoded() { o.mark.MarkDecoded() }

// ParseObject parses a raw object as the policy reads it.
func ParseObject(raw []byte) (*Object, error) {
	v, exact, err := parseJSONValueExact(raw)
	if err != nil {
		return nil, err
	}
	obj, ok := v.(ast.Object)
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	return &Object{value: obj, exact: exact}, nil
}

// Exact reports whether the object was parsed exactly (see above).
func (o *Object) Exact() bool { return o.exact }

// Meta returns the object's metadata.name, metadata.generateName and the
// string values of metadata.labels.
func (o *Object) Meta() (name, generateName string, labels map[string]string) {
	meta, _ := getPath(o.value, []string{"metadata"}).(ast.Object)
	if meta == nil {
		return "", "", map[string]string{}
	}
	str := func(key string) string {
		if t := meta.Get(ast.InternedTerm(key)); t != nil {
			if s, ok := t.Value.(ast.String); ok {
				return string(s)
			}
		}
		return ""
	}
	labels = map[string]string{}
	if t := meta.Get(ast.InternedTerm("labels")); t != nil {
		if l, ok := t.Value.(ast.Object); ok {
			l.Foreach(func(k, v *ast.Term) {
				ks, kok := k.Value.(ast.String)
				vs, vok := v.Value.(ast.String)
				if kok && vok {
					labels[string(ks)] = string(vs)
				}
			})
		}
	}
	return str("name"), str("generateName"), labels
}

// vouchTypes are the kinds whose decoding a decision may vouch for.
var vouchTypes = map[string]reflect.Type{
	"Job": reflect.TypeFor[batchv1.Job](),
	"Pod": reflect.TypeFor[corev1.Pod](),
}

// vouchKinds lists the kinds whose strict decoding the query's decisions
// may vouch for: none unless the views cover the whole object.
func vouchKinds(views []viewPath, masks [][]string) map[string]bool {
	whole := false
	for _, v := range views {
		if v.covers(viewPath{"request", "object"}) {
			whole = true
		}
	}
	out := map[string]bool{}
	if !whole {
		return out
	}
	for kind, t := range vouchTypes {
		if masksKeepDecoding(t, masks) {
			out[kind] = true
		}
	}
	return out
}

// vouchable reports whether the query's decision for in may vouch for its
// object's strict decoding (see above).
func (q *cachedQuery) vouchable(in Input) bool {
	if q == nil || q.cache == nil || in.Request == nil || !q.vouch[in.Request.Kind.Kind] {
		return false
	}
	if in.Parsed != nil {
		return in.Parsed.exact
	}
	return in.Object != nil && in.ObjectExact
}

// decodeMark is shared by every request served one cached decision.
type decodeMark struct {
	decoded *atomic.Bool
	vouch   bool
}

// DecodeVouched reports whether an object of this request's view already
// decoded strictly, which vouches for this one (see above).
func (d decodeMark) DecodeVouched() bool { return d.vouch && d.decoded != nil && d.decoded.Load() }

// MarkDecoded records that this request's object decoded strictly; it
// counts only for a request whose decision may vouch.
func (d decodeMark) MarkDecoded() {
	if d.vouch && d.decoded != nil {
		d.decoded.Store(true)
	}
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// masksKeepDecoding reports whether every mask path ends, in t, at a
// plain string (no custom decoding, no ",string" option), or names a
// field t does not have (an object holding it never decodes strictly,
// whatever the value). Anything else (a custom decoder on the way, an
// interface) is refused: the view might hide what decides the decode.
func masksKeepDecoding(t reflect.Type, masks [][]string) bool {
	for _, m := range masks {
		if !maskKeepsDecoding(t, m) {
			return false
		}
	}
	return true
}

func maskKeepsDecoding(t reflect.Type, path []string) bool {
	for len(path) > 0 {
		seg := path[0]
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if scalarDecoding[t] {
			// The mask goes on into an object or an array, which such a
			// type refuses whatever it holds.
			return true
		}
		if customDecoding(t) {
			return false
		}
		switch t.Kind() {
		case reflect.Struct:
			if seg == "*" {
				// Every key: each field, and any other key never decodes.
				for _, f := range jsonFields(t) {
					if strings.Contains(f.Tag.Get("json"), ",string") || !maskKeepsDecoding(f.Type, path[1:]) {
						return false
					}
				}
				return true
			}
			f, ok := jsonField(t, seg)
			if !ok {
				return true // no such field: strict decoding refuses it
			}
			if strings.Contains(f.Tag.Get("json"), ",string") {
				return false
			}
			t = f.Type
		case reflect.Map:
			if t.Key().Kind() != reflect.String {
				return false
			}
			t = t.Elem()
		case reflect.Slice, reflect.Array:
			if seg != "*" {
				return true // masks follow only "*" into an array
			}
			t = t.Elem()
		default:
			// A scalar: the mask goes on into an object or an array, which
			// it never decodes into; an interface might.
			return t.Kind() != reflect.Interface
		}
		path = path[1:]
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() == reflect.String && !customDecoding(t)
}

// scalarDecoding are types with decoders of their own that refuse every
// JSON object and array (they read a string, a number or null).
var scalarDecoding = map[reflect.Type]bool{
	reflect.TypeFor[resource.Quantity]():  true,
	reflect.TypeFor[metav1.Time]():        true,
	reflect.TypeFor[metav1.MicroTime]():   true,
	reflect.TypeFor[intstr.IntOrString](): true,
}

func customDecoding(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return t.Implements(jsonUnmarshaler) || p.Implements(jsonUnmarshaler) || t.Implements(textUnmarshaler) || p.Implements(textUnmarshaler)
}

// jsonField finds the field encoding/json matches to key exactly,
// following embedded and inline structs.
func jsonField(t reflect.Type, key string) (reflect.StructField, bool) {
	for _, f := range jsonFields(t) {
		if fieldName(f) == key {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// jsonFields lists the fields of a struct as JSON keys reach them, the
// fields of embedded and inline structs included.
func jsonFields(t reflect.Type) []reflect.StructField {
	var out []reflect.StructField
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if (f.Anonymous && name == "") || strings.Contains(","+opts+",", ",inline,") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				out = append(out, jsonFields(ft)...)
			}
			continue
		}
		if f.IsExported() {
			out = append(out, f)
		}
	}
	return out
}

func fieldName(f reflect.StructField) string {
	if name, _, _ := strings.Cut(f.Tag.Get("json"), ","); name != "" {
		return name
	}
	return f.Name
}
