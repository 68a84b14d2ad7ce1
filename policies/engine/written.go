package engine

// WrittenBy returns the part of hardened that the applied ops wrote: the
// value at each op's path, under copies of the objects on the way, and
// arrays on the way kept at their length with null for the elements no op
// wrote (null decodes as nothing). Removals write nothing. Decoding it as
// the kind checks exactly the values the policy put there.
func WrittenBy(hardened map[string]any, applied []Op) map[string]any {
	out := map[string]any{}
	for _, op := range applied {
		if op.Op == OpRemove {
			continue
		}
		var dst, src any = out, hardened
		for i, seg := range op.Path {
			value, ok := get(src, seg)
			if !ok {
				break
			}
			if i == len(op.Path)-1 {
				setChild(dst, seg, value)
				break
			}
			next, _ := get(dst, seg)
			if next == nil {
				switch v := value.(type) {
				case map[string]any:
					next = map[string]any{}
				case []any:
					next = make([]any, len(v))
				default:
					setChild(dst, seg, value)
				}
				if next == nil {
					break
				}
				setChild(dst, seg, next)
			}
			dst, src = next, value
		}
	}
	return out
}

func setChild(container any, seg any, value any) {
	switch c := container.(type) {
	case map[string]any:
		if key, ok := seg.(string); ok {
			c[key] = value
		}
	case []any:
		if i, ok := seg.(int); ok && i >= 0 && i < len(c) {
			c[i] = value
		}
	}
}
