package mutate

import (
	"slices"
	"strconv"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/flowforge/flowforge/policies/engine"
)

// The JSON patch is built straight from the policy's decision, instead of
// encoding the hardened object and diffing it against the request's: each
// op that changed the object writes one subtree, so the patch writes that
// subtree's final value where the original object first lacks the op's
// path (its anchor). TestPatchFromOpsEqualsDiff proves the result equals
// admission.PatchResponseFromRaw's on every golden, adversarial and fuzz
// input.

// anchors records, before the ops are applied, where each op's path
// starts to be missing from the original object. It is keyed on the op's
// path slice itself (its first element's address): the ops applied are
// the decision's ops, sharing their paths (a copy op's merge too), so no
// path is rendered to find its anchor.
type anchors map[*any][]any

// anchorsOf computes the anchor of every op against the original object:
// the op's path if the original has it, else its shortest prefix the
// original lacks (or holds null at), which the op creates.
func anchorsOf(obj map[string]any, ops []engine.Op) anchors {
	out := make(anchors, len(ops))
	for _, op := range ops {
		if len(op.Path) > 0 {
			out[&op.Path[0]] = anchorOf(obj, op.Path)
		}
	}
	return out
}

// anchor is the anchor recorded for the op's path, or the path itself.
func (a anchors) anchor(path []any) []any {
	if len(path) > 0 {
		if p, ok := a[&path[0]]; ok {
			return p
		}
	}
	return path
}

func anchorOf(obj map[string]any, path []any) []any {
	var cur any = obj
	for i, seg := range path {
		var next any
		present := false
		switch c := cur.(type) {
		case map[string]any:
			if k, ok := seg.(string); ok {
				next, present = c[k]
			}
		case []any:
			if idx, ok := seg.(int); ok && idx >= 0 && idx < len(c) {
				next, present = c[idx], true
			}
		}
		if !present || next == nil {
			return path[:i+1]
		}
		cur = next
	}
	return path
}

// patchFromOps returns the JSON patch that turns the original object into
// hardened (the same object after the ops were applied), given the
// anchors computed before applying and the ops that changed it. extra
// lists further paths the handler rewrote after the policy (the Pod's
// injected token volume), each present in the original.
func patchFromOps(hardened map[string]any, before anchors, applied []engine.Op, extra [][]any) []jsonpatch.JsonPatchOperation {
	type write struct {
		path   []any
		remove bool
	}
	writes := make([]write, 0, len(applied)+len(extra))
	for _, op := range applied {
		if op.Setting == injectedTokenSetting {
			continue // its writes are in extra
		}
		if op.Op == engine.OpRemove {
			writes = append(writes, write{path: op.Path, remove: true})
			continue
		}
		writes = append(writes, write{path: before.anchor(op.Path)})
	}
	for _, p := range extra {
		writes = append(writes, write{path: p})
	}
	// A write inside another write's subtree is covered by it, and a
	// write to a path an earlier write wrote is one write: an earlier
	// write of the same path is covered exactly when this one is. Paths
	// compare as their JSON pointers: a segment's "/" is escaped, so each
	// "/" of a pointer ends an ancestor, and two paths render alike
	// exactly when their pointers are equal.
	pointers := make([]string, len(writes))
	covering := make(map[string]bool, len(writes))
	for i, w := range writes {
		pointers[i] = pointer(w.path)
		if !w.remove {
			covering[pointers[i]] = true
		}
	}
	seen := make(map[string]bool, len(writes))
	out := make([]jsonpatch.JsonPatchOperation, 0, len(writes))
	for i, w := range writes {
		ptr := pointers[i]
		if seen[ptr] || coveredBy(covering, ptr) {
			continue
		}
		seen[ptr] = true
		if w.remove {
			out = append(out, jsonpatch.NewOperation("remove", ptr, nil))
			continue
		}
		value, _ := valueAt(hardened, w.path)
		op := "add" // adds or replaces an object member
		if _, isIndex := w.path[len(w.path)-1].(int); isIndex {
			op = "replace"
		}
		out = append(out, jsonpatch.NewOperation(op, ptr, value))
	}
	// Removals first, then writes, each by path: a stable patch.
	slices.SortStableFunc(out, func(a, b jsonpatch.JsonPatchOperation) int {
		if (a.Operation == "remove") != (b.Operation == "remove") {
			if a.Operation == "remove" {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Path, b.Path)
	})
	return out
}

// patchResponse is admission.PatchResponseFromRaw for a patch already built.
func patchResponse(patches []jsonpatch.JsonPatchOperation) admission.Response {
	resp := admission.Response{Patches: patches, AdmissionResponse: admissionv1.AdmissionResponse{Allowed: true}}
	if len(patches) > 0 {
		pt := admissionv1.PatchTypeJSONPatch
		resp.PatchType = &pt
	}
	return resp
}

// coveredBy reports whether a proper ancestor of the pointer ptr (the
// root included) is in covering.
func coveredBy(covering map[string]bool, ptr string) bool {
	if ptr == "" {
		return false
	}
	if covering[""] {
		return true
	}
	for k := 1; k < len(ptr); k++ {
		if ptr[k] == '/' && covering[ptr[:k]] {
			return true
		}
	}
	return false
}

func valueAt(obj map[string]any, path []any) (any, bool) {
	var cur any = obj
	for _, seg := range path {
		switch c := cur.(type) {
		case map[string]any:
			k, _ := seg.(string)
			v, ok := c[k]
			if !ok {
				return nil, false
			}
			cur = v
		case []any:
			idx, _ := seg.(int)
			if idx < 0 || idx >= len(c) {
				return nil, false
			}
			cur = c[idx]
		default:
			return nil, false
		}
	}
	return cur, true
}

// pointer renders a JSON pointer (RFC 6901).
func pointer(path []any) string {
	var b strings.Builder
	for _, seg := range path {
		b.WriteByte('/')
		s := pathSeg(seg)
		s = strings.ReplaceAll(s, "~", "~0")
		b.WriteString(strings.ReplaceAll(s, "/", "~1"))
	}
	return b.String()
}

func pathSeg(seg any) string {
	switch s := seg.(type) {
	case string:
		return s
	case int:
		return strconv.Itoa(s)
	}
	return ""
}

// pathKey identifies a path, keys and indexes kept apart.
func pathKey(path []any) string {
	var b strings.Builder
	for _, seg := range path {
		switch s := seg.(type) {
		case string:
			b.WriteString("\x00k")
			b.WriteString(s)
		case int:
			b.WriteString("\x00i")
			b.WriteString(strconv.Itoa(s))
		}
	}
	return b.String()
}
