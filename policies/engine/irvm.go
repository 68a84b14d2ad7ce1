package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/builtins"
)

// This file is the compiled evaluator of the identity query (see
// docs/performance.md, "Round 7"). OPA's planner (the compile package's
// "plan" target, the same plan OPA compiles to Wasm) turns the query into
// OPA's intermediate representation: functions of blocks of statements
// over local variables. irProgram runs that plan directly on AST values,
// with OPA's own built-in functions (topdown.GetBuiltin), instead of
// topdown's unification, backtracking and per-rule bookkeeping.
//
// The semantics are those of OPA's Wasm compiler, which is OPA's
// reference for the IR (internal/compiler/wasm):
//   - a statement that is undefined (a failed comparison, a missing key, an
//     undefined call) leaves the block it is in; BreakStmt{Index: n} leaves
//     n+1 blocks;
//   - the blocks of a BlockStmt run in turn, each left on its own;
//   - a ScanStmt's body is one level (leaving it continues with the next
//     element) inside the scan's own level (leaving that ends the scan);
//   - a NotStmt is defined when its block is left before its end; a WithStmt
//     when its block runs to the end, with the local patched meanwhile;
//   - a function of the input and data alone is memoised for one
//     evaluation, per WithStmt scope;
//   - a built-in's error makes the call undefined, as topdown does outside
//     strict mode; a Halt error ends the evaluation.
//
// A plan that uses anything else (dynamic calls, relations such as walk,
// non-deterministic built-ins, print) is not run here: the policy keeps
// topdown for the query (irProgram's constructor says why). Tests hold the
// two evaluators to the same answer on every policy test input, the
// adversarial tables and the differential fuzz targets.

// irProgram is a planned query, ready to run.
type irProgram struct {
	plans   []*irPlan
	funcs   []*irFunc
	strings []*ast.Term
	data    *ast.Term
	calls   map[*ir.CallStmt]irCallee
	frames  sync.Pool
	// emptySet and emptyObject are what MakeSetStmt and MakeObjectStmt
	// start from: the first insert replaces them, nothing changes them.
	emptySet    ast.Set
	emptyObject ast.Object
	// consts are the terms of folded constant arrays (irConstStmt): an
	// append to one copies it.
	consts map[*ast.Term]bool
	// metrics is what built-ins that count get: nothing is recorded.
	metrics metrics.Metrics
}

// irConstStmt assigns a constant: the planner builds a literal array as
// MakeArrayStmt followed by one ArrayAppendStmt per element, and the
// checker folds such a run of constants into one shared term.
type irConstStmt struct {
	Target ir.Local
	Value  *ast.Term
	ir.Location
}

type irPlan struct {
	name   string
	blocks []*ir.Block
	locals int
}

type irFunc struct {
	name    string
	params  []ir.Local
	ret     ir.Local
	blocks  []*ir.Block
	locals  int
	memoize bool
	index   int
}

// irCallee is what a CallStmt calls: a planned function or a built-in.
type irCallee struct {
	fn      *irFunc
	builtin topdown.BuiltinFunc
	name    string
}

// errIRUnsupported marks a plan the evaluator does not run.
var errIRUnsupported = errors.New("not supported by the compiled evaluator")

// irExcluded reports the built-ins the evaluator never calls, beyond the
// non-deterministic ones and relations: their results depend on more than
// their operands, or they act outside the evaluation.
func irExcluded(name string) bool {
	switch name {
	case "print", "internal.print", "trace", "opa.runtime", "walk", "internal.test_case":
		return true
	}
	return false
}

// newIRProgram prepares a plan for the named entrypoints (in that order)
// over the data document.
func newIRProgram(policy *ir.Policy, entrypoints []string, data *ast.Term) (*irProgram, error) {
	if policy == nil || policy.Static == nil || policy.Plans == nil {
		return nil, fmt.Errorf("empty plan: %w", errIRUnsupported)
	}
	prog := &irProgram{data: data, emptySet: ast.NewSet(), emptyObject: ast.NewObject(), consts: map[*ast.Term]bool{}, metrics: metrics.NoOp()}
	for _, s := range policy.Static.Strings {
		prog.strings = append(prog.strings, ast.StringTerm(s.Value))
	}
	byName := map[string]*irFunc{}
	if policy.Funcs != nil {
		for i, f := range policy.Funcs.Funcs {
			if len(f.Params) < 2 {
				return nil, fmt.Errorf("function %s has %d parameters: %w", f.Name, len(f.Params), errIRUnsupported)
			}
			fn := &irFunc{name: f.Name, params: f.Params, ret: f.Return, blocks: f.Blocks, memoize: len(f.Params) == 2, index: i}
			fn.locals = maxLocal(int(f.Return), f.Params)
			byName[f.Name] = fn
			prog.funcs = append(prog.funcs, fn)
		}
	}
	for _, name := range entrypoints {
		var found *ir.Plan
		for _, p := range policy.Plans.Plans {
			if p.Name == name {
				found = p
			}
		}
		if found == nil {
			return nil, fmt.Errorf("no plan for %s: %w", name, errIRUnsupported)
		}
		prog.plans = append(prog.plans, &irPlan{name: name, blocks: found.Blocks, locals: int(ir.Data) + 1})
	}
	calls := map[*ir.CallStmt]irCallee{}
	check := &irChecker{prog: prog, byName: byName, calls: calls}
	for _, fn := range prog.funcs {
		if err := check.frame(fn.blocks, &fn.locals); err != nil {
			return nil, fmt.Errorf("function %s: %w", fn.name, err)
		}
	}
	for _, p := range prog.plans {
		if err := check.frame(p.blocks, &p.locals); err != nil {
			return nil, fmt.Errorf("plan %s: %w", p.name, err)
		}
	}
	prog.calls = calls
	return prog, nil
}

func maxLocal(n int, locals []ir.Local) int {
	for _, l := range locals {
		n = max(n, int(l))
	}
	return n
}

// irChecker walks a plan once: it records the highest local of each frame,
// resolves every call, and refuses what the evaluator does not run.
type irChecker struct {
	prog   *irProgram
	byName map[string]*irFunc
	calls  map[*ir.CallStmt]irCallee
	// appendsElsewhere counts the appends to each local in the function
	// being checked: a literal array folds only when its own appends are
	// all there are.
	appendsElsewhere map[ir.Local]int
}

func (c *irChecker) operand(op *ir.Operand, high *int) error {
	// A plan read from JSON holds pointers: the evaluator reads values.
	switch v := op.Value.(type) {
	case *ir.Local:
		op.Value = *v
	case *ir.StringIndex:
		op.Value = *v
	case *ir.Bool:
		op.Value = *v
	}
	switch v := op.Value.(type) {
	case ir.Local:
		*high = max(*high, int(v))
	case ir.StringIndex:
		if int(v) < 0 || int(v) >= len(c.prog.strings) {
			return fmt.Errorf("string %d out of range: %w", v, errIRUnsupported)
		}
	case ir.Bool:
	default:
		return fmt.Errorf("operand %T: %w", op.Value, errIRUnsupported)
	}
	return nil
}

func (c *irChecker) operands(high *int, ops ...*ir.Operand) error {
	for _, op := range ops {
		if err := c.operand(op, high); err != nil {
			return err
		}
	}
	return nil
}

// frame checks the blocks of one function or plan and sets locals to the
// size of its frame (it holds the highest local known so far).
func (c *irChecker) frame(blocks []*ir.Block, locals *int) error {
	c.appendsElsewhere = countAppends(blocks)
	for _, b := range blocks {
		if err := c.block(b, locals); err != nil {
			return err
		}
	}
	*locals++
	return nil
}

func (c *irChecker) args(high *int, args []ir.Operand) error {
	for i := range args {
		if err := c.operand(&args[i], high); err != nil {
			return err
		}
	}
	return nil
}

func (c *irChecker) block(b *ir.Block, high *int) error {
	c.fold(b)
	for _, stmt := range b.Stmts {
		if err := c.stmt(stmt, high); err != nil {
			return err
		}
	}
	return nil
}

func (c *irChecker) stmt(stmt ir.Stmt, high *int) error {
	l := func(ls ...ir.Local) { *high = maxLocal(*high, ls) }
	switch s := stmt.(type) {
	case *ir.ResultSetAddStmt:
		l(s.Value)
	case *ir.ReturnLocalStmt:
		l(s.Source)
	case *ir.BlockStmt:
		for _, b := range s.Blocks {
			if err := c.block(b, high); err != nil {
				return err
			}
		}
	case *ir.BreakStmt, *ir.NopStmt:
	case *irConstStmt:
		l(s.Target)
	case *ir.CallStmt:
		l(s.Result)
		if err := c.args(high, s.Args); err != nil {
			return err
		}
		return c.call(s)
	case *ir.WithStmt:
		l(s.Local)
		for _, i := range s.Path {
			if i < 0 || i >= len(c.prog.strings) {
				return fmt.Errorf("with path string %d out of range: %w", i, errIRUnsupported)
			}
		}
		if err := c.operand(&s.Value, high); err != nil {
			return err
		}
		return c.block(s.Block, high)
	case *ir.AssignVarStmt:
		l(s.Target)
		return c.operand(&s.Source, high)
	case *ir.AssignVarOnceStmt:
		l(s.Target)
		return c.operand(&s.Source, high)
	case *ir.AssignIntStmt:
		l(s.Target)
	case *ir.ScanStmt:
		l(s.Source, s.Key, s.Value)
		return c.block(s.Block, high)
	case *ir.NotStmt:
		return c.block(s.Block, high)
	case *ir.DotStmt:
		l(s.Target)
		return c.operands(high, &s.Source, &s.Key)
	case *ir.LenStmt:
		l(s.Target)
		return c.operand(&s.Source, high)
	case *ir.EqualStmt:
		return c.operands(high, &s.A, &s.B)
	case *ir.NotEqualStmt:
		return c.operands(high, &s.A, &s.B)
	case *ir.MakeNullStmt:
		l(s.Target)
	case *ir.MakeNumberIntStmt:
		l(s.Target)
	case *ir.MakeNumberRefStmt:
		l(s.Target)
		if s.Index < 0 || s.Index >= len(c.prog.strings) {
			return fmt.Errorf("number string %d out of range: %w", s.Index, errIRUnsupported)
		}
	case *ir.MakeArrayStmt:
		l(s.Target)
	case *ir.MakeObjectStmt:
		l(s.Target)
	case *ir.MakeSetStmt:
		l(s.Target)
	case *ir.IsArrayStmt:
		return c.operand(&s.Source, high)
	case *ir.IsObjectStmt:
		return c.operand(&s.Source, high)
	case *ir.IsSetStmt:
		return c.operand(&s.Source, high)
	case *ir.IsDefinedStmt:
		l(s.Source)
	case *ir.IsUndefinedStmt:
		l(s.Source)
	case *ir.ResetLocalStmt:
		l(s.Target)
	case *ir.ArrayAppendStmt:
		l(s.Array)
		return c.operand(&s.Value, high)
	case *ir.ObjectInsertStmt:
		l(s.Object)
		return c.operands(high, &s.Key, &s.Value)
	case *ir.ObjectInsertOnceStmt:
		l(s.Object)
		return c.operands(high, &s.Key, &s.Value)
	case *ir.ObjectMergeStmt:
		l(s.A, s.B, s.Target)
	case *ir.SetAddStmt:
		l(s.Set)
		return c.operand(&s.Value, high)
	default:
		return fmt.Errorf("statement %T: %w", stmt, errIRUnsupported)
	}
	return nil
}

// fold replaces each literal array of constants in b (MakeArrayStmt, then
// exactly its capacity of ArrayAppendStmts of strings or booleans to the
// same local) with an irConstStmt, when nothing else in the function
// appends to that local.
func (c *irChecker) fold(b *ir.Block) {
	out := b.Stmts[:0:0]
	for i := 0; i < len(b.Stmts); i++ {
		mk, ok := b.Stmts[i].(*ir.MakeArrayStmt)
		n := 0
		if ok {
			n = int(mk.Capacity)
		}
		if !ok || n <= 0 || i+n >= len(b.Stmts) || c.appendsElsewhere[mk.Target] > n {
			out = append(out, b.Stmts[i])
			continue
		}
		elems := make([]*ast.Term, 0, n)
		for _, next := range b.Stmts[i+1 : i+1+n] {
			app, ok := next.(*ir.ArrayAppendStmt)
			if !ok || app.Array != mk.Target {
				break
			}
			if t := c.constant(app.Value); t != nil {
				elems = append(elems, t)
			}
		}
		if len(elems) != n || c.appendsElsewhere[mk.Target] != n {
			out = append(out, b.Stmts[i])
			continue
		}
		t := ast.NewTerm(ast.NewArray(elems...))
		c.prog.consts[t] = true
		out = append(out, &irConstStmt{Target: mk.Target, Value: t, Location: mk.Location})
		i += n
	}
	b.Stmts = out
}

// constant is the term of a constant operand, or nil.
func (c *irChecker) constant(op ir.Operand) *ast.Term {
	switch v := op.Value.(type) {
	case ir.StringIndex:
		if int(v) >= 0 && int(v) < len(c.prog.strings) {
			return c.prog.strings[v]
		}
	case *ir.StringIndex:
		if int(*v) >= 0 && int(*v) < len(c.prog.strings) {
			return c.prog.strings[*v]
		}
	case ir.Bool:
		return ast.InternedTerm(bool(v))
	case *ir.Bool:
		return ast.InternedTerm(bool(*v))
	}
	return nil
}

// countAppends counts, for each local, the ArrayAppendStmts to it in the
// blocks (ir.Walk visits every statement, nested blocks included).
func countAppends(blocks []*ir.Block) map[ir.Local]int {
	counts := appendCounts{}
	for _, b := range blocks {
		_ = ir.Walk(counts, b) // the visitor never fails
	}
	return counts
}

// appendCounts is countAppends' ir.Visitor.
type appendCounts map[ir.Local]int

func (appendCounts) Before(any) {}

func (appendCounts) After(any) {}

func (c appendCounts) Visit(x any) (ir.Visitor, error) {
	if s, ok := x.(*ir.ArrayAppendStmt); ok {
		c[s.Array]++
	}
	return c, nil
}

func (c *irChecker) call(s *ir.CallStmt) error {
	if fn, ok := c.byName[s.Func]; ok {
		if len(s.Args) != len(fn.params) {
			return fmt.Errorf("call of %s with %d arguments, it takes %d: %w", s.Func, len(s.Args), len(fn.params), errIRUnsupported)
		}
		c.calls[s] = irCallee{fn: fn, name: s.Func}
		return nil
	}
	decl, ok := ast.BuiltinMap[s.Func]
	if !ok || irExcluded(s.Func) || decl.Nondeterministic || decl.Relation || decl.Decl.Result() == nil {
		return fmt.Errorf("built-in %s: %w", s.Func, errIRUnsupported)
	}
	f := topdown.GetBuiltin(s.Func)
	if f == nil {
		return fmt.Errorf("built-in %s has no implementation: %w", s.Func, errIRUnsupported)
	}
	c.calls[s] = irCallee{builtin: f, name: s.Func}
	return nil
}

// irEval is one evaluation: its frames, memo and built-in context.
type irEval struct {
	prog   *irProgram
	arena  []*ast.Term
	sp     int
	memo   []irMemo
	bctx   topdown.BuiltinContext
	out    *ast.Term
	ret    *ast.Term
	onOut  func(*ast.Term) error
	steps  int
	cancel topdown.Cancel
	scans  []irScan
	// scanBodyFn and scanElemFn are scanBody and scanElem, bound once.
	scanBodyFn func(k, v *ast.Term) bool
	scanElemFn func(k *ast.Term) bool
}

type irMemo struct {
	value *ast.Term
	ok    bool
}

// irHalt carries an error that ends the evaluation.
type irHalt struct{ err error }

// run evaluates every entrypoint on input and returns each one's value
// (nil where it is undefined).
func (p *irProgram) run(ctx context.Context, cancel topdown.Cancel, input *ast.Term) (results []*ast.Term, err error) {
	e, _ := p.frames.Get().(*irEval)
	if e == nil {
		e = &irEval{prog: p, arena: make([]*ast.Term, 256), memo: make([]irMemo, len(p.funcs))}
		e.onOut = func(t *ast.Term) error { e.out = t; return nil }
		e.scanBodyFn, e.scanElemFn = e.scanBody, e.scanElem
	}
	e.bctx = topdown.BuiltinContext{Context: ctx, Cancel: cancel, Cache: builtins.Cache{}, Metrics: p.metrics}
	e.cancel = cancel
	e.steps = 0
	clear(e.memo)
	defer func() {
		if r := recover(); r != nil {
			results, err = nil, fmt.Errorf("compiled evaluation: %v", r)
			e.sp = 0
			clear(e.arena)
			e.scans = e.scans[:0]
			return
		}
		clear(e.arena[:e.sp])
		e.sp = 0
		e.bctx = topdown.BuiltinContext{}
		e.out, e.ret = nil, nil
		p.frames.Put(e)
	}()
	results = make([]*ast.Term, len(p.plans))
	for i, plan := range p.plans {
		frame := e.push(plan.locals)
		frame[ir.Input], frame[ir.Data] = input, p.data
		var last *ast.Term
		for _, b := range plan.blocks {
			brk, ret, err := e.block(frame, b, &last)
			if err != nil {
				return nil, err
			}
			if ret || brk > 0 {
				break
			}
		}
		if last != nil {
			if obj, ok := last.Value.(ast.Object); ok {
				results[i] = obj.Get(p.strings[0])
			}
		}
		e.pop(plan.locals)
	}
	return results, nil
}

func (e *irEval) push(n int) []*ast.Term {
	if e.sp+n > len(e.arena) {
		// Frames already handed out keep the old array; new ones use the
		// new one.
		e.arena = make([]*ast.Term, max(2*len(e.arena), e.sp+n))
	}
	f := e.arena[e.sp : e.sp+n : e.sp+n]
	e.sp += n
	return f
}

func (e *irEval) pop(n int) {
	e.sp -= n
	clear(e.arena[e.sp : e.sp+n])
}

func (e *irEval) read(frame []*ast.Term, op ir.Operand) *ast.Term {
	switch v := op.Value.(type) {
	case ir.Local:
		return frame[v]
	case ir.StringIndex:
		return e.prog.strings[v]
	case ir.Bool:
		return ast.InternedTerm(bool(v))
	}
	return nil
}

// block runs b. brk is -1 when b ran to its end, otherwise how many more
// enclosing blocks to leave (0: only b). ret reports a ReturnLocalStmt;
// resultSet receives a plan's ResultSetAddStmt.
func (e *irEval) block(frame []*ast.Term, b *ir.Block, resultSet **ast.Term) (brk int, ret bool, err error) {
	for _, stmt := range b.Stmts {
		switch s := stmt.(type) {
		case *ir.DotStmt:
			src := e.read(frame, s.Source)
			if src == nil {
				return 0, false, nil
			}
			v := dot(src.Value, e.read(frame, s.Key))
			if v == nil {
				return 0, false, nil
			}
			frame[s.Target] = v
		case *ir.AssignVarStmt:
			frame[s.Target] = e.read(frame, s.Source)
		case *ir.CallStmt:
			v, err := e.call(frame, s)
			if err != nil {
				return 0, false, err
			}
			if v == nil {
				return 0, false, nil
			}
			frame[s.Result] = v
		case *ir.NotEqualStmt:
			a, b := e.read(frame, s.A), e.read(frame, s.B)
			if a == nil || b == nil || ast.Compare(a.Value, b.Value) == 0 {
				return 0, false, nil
			}
		case *ir.EqualStmt:
			a, b := e.read(frame, s.A), e.read(frame, s.B)
			if a == nil || b == nil || ast.Compare(a.Value, b.Value) != 0 {
				return 0, false, nil
			}
		case *ir.BlockStmt:
			for _, sub := range s.Blocks {
				n, r, err := e.block(frame, sub, resultSet)
				if err != nil || r {
					return n, r, err
				}
				if n > 0 {
					return n - 1, false, nil
				}
			}
		case *ir.BreakStmt:
			return int(s.Index), false, nil
		case *ir.IsDefinedStmt:
			if frame[s.Source] == nil {
				return 0, false, nil
			}
		case *ir.IsUndefinedStmt:
			if frame[s.Source] != nil {
				return 0, false, nil
			}
		case *ir.ResetLocalStmt:
			frame[s.Target] = nil
		case *ir.ReturnLocalStmt:
			e.ret = frame[s.Source]
			return 0, true, nil
		case *ir.AssignVarOnceStmt:
			v := e.read(frame, s.Source)
			if cur := frame[s.Target]; cur != nil && v != nil && ast.Compare(cur.Value, v.Value) != 0 {
				return 0, false, irConflict(s.Location, "complete rules must not produce multiple outputs")
			}
			frame[s.Target] = v
		case *ir.ScanStmt, *ir.WithStmt:
			// Each runs its block(s) and returns -1 to continue after it.
			var n int
			var r bool
			var err error
			if scan, ok := s.(*ir.ScanStmt); ok {
				n, r, err = e.scan(frame, scan, resultSet)
			} else {
				n, r, err = e.with(frame, s.(*ir.WithStmt), resultSet)
			}
			if err != nil || r {
				return n, r, err
			}
			if n >= 0 {
				return n, false, nil
			}
		case *ir.NotStmt:
			n, r, err := e.block(frame, s.Block, resultSet)
			if err != nil || r {
				return n, r, err
			}
			switch {
			case n < 0: // the negated block held
				return 0, false, nil
			case n > 0:
				return n - 1, false, nil
			}
		case *irConstStmt:
			frame[s.Target] = s.Value
		case *ir.MakeObjectStmt:
			frame[s.Target] = ast.NewTerm(e.prog.emptyObject)
		case *ir.MakeArrayStmt:
			frame[s.Target] = ast.NewTerm(ast.NewArrayWithCapacity(int(max(s.Capacity, 0))))
		case *ir.MakeSetStmt:
			frame[s.Target] = ast.NewTerm(e.prog.emptySet)
		case *ir.MakeNullStmt:
			frame[s.Target] = ast.InternedNullTerm
		case *ir.MakeNumberIntStmt:
			frame[s.Target] = ast.InternedTerm(int(s.Value))
		case *ir.MakeNumberRefStmt:
			frame[s.Target] = ast.NewTerm(ast.Number(e.prog.strings[s.Index].Value.(ast.String)))
		case *ir.AssignIntStmt:
			frame[s.Target] = ast.InternedTerm(int(s.Value))
		case *ir.ObjectInsertStmt:
			obj, ok := e.writableObject(frame[s.Object])
			if !ok {
				return 0, false, irConflict(s.Location, "object insert into a non-object")
			}
			obj.Insert(e.read(frame, s.Key), e.read(frame, s.Value))
		case *ir.ObjectInsertOnceStmt:
			obj, ok := e.writableObject(frame[s.Object])
			if !ok {
				return 0, false, irConflict(s.Location, "object insert into a non-object")
			}
			k, v := e.read(frame, s.Key), e.read(frame, s.Value)
			if cur := obj.Get(k); cur != nil {
				if ast.Compare(cur.Value, v.Value) != 0 {
					return 0, false, irConflict(s.Location, "object keys must be unique")
				}
				continue
			}
			obj.Insert(k, v)
		case *ir.ObjectMergeStmt:
			a, aok := frame[s.A].Value.(ast.Object)
			b, bok := frame[s.B].Value.(ast.Object)
			if !aok || !bok {
				return 0, false, irConflict(s.Location, "object merge of a non-object")
			}
			merged, ok := a.Merge(b)
			if !ok {
				return 0, false, irConflict(s.Location, "object merge conflict")
			}
			frame[s.Target] = ast.NewTerm(merged)
		case *ir.SetAddStmt:
			t := frame[s.Set]
			set, ok := t.Value.(ast.Set)
			if !ok {
				return 0, false, irConflict(s.Location, "set add into a non-set")
			}
			if set == e.prog.emptySet {
				set = ast.NewSet()
				t.Value = set
			}
			set.Add(e.read(frame, s.Value))
		case *ir.ArrayAppendStmt:
			t := frame[s.Array]
			arr, ok := t.Value.(*ast.Array)
			if !ok {
				return 0, false, irConflict(s.Location, "array append to a non-array")
			}
			if e.prog.consts[t] { // a folded constant is shared: copy it
				t = ast.NewTerm(arr)
				frame[s.Array] = t
			}
			t.Value = arr.Append(e.read(frame, s.Value))
		case *ir.LenStmt:
			src := e.read(frame, s.Source)
			n, ok := length(src)
			if !ok {
				return 0, false, nil
			}
			frame[s.Target] = ast.InternedTerm(n)
		case *ir.IsArrayStmt:
			if t := e.read(frame, s.Source); t == nil || !isArray(t.Value) {
				return 0, false, nil
			}
		case *ir.IsObjectStmt:
			if t := e.read(frame, s.Source); t == nil || !isObject(t.Value) {
				return 0, false, nil
			}
		case *ir.IsSetStmt:
			if t := e.read(frame, s.Source); t == nil || !isSet(t.Value) {
				return 0, false, nil
			}
		case *ir.ResultSetAddStmt:
			*resultSet = frame[s.Value]
		case *ir.NopStmt:
		default:
			return 0, false, fmt.Errorf("compiled evaluation: statement %T: %w", stmt, errIRUnsupported)
		}
	}
	return -1, false, nil
}

// scan runs s's body once per element. It returns -1 to continue after
// the scan, or how many more blocks to leave beyond the one holding it.
func (e *irEval) scan(frame []*ast.Term, s *ir.ScanStmt, resultSet **ast.Term) (int, bool, error) {
	src := frame[s.Source]
	if src == nil {
		return -1, false, nil
	}
	// The state of the scan lives on a stack in e, read by a method value
	// bound once per irEval: no closure is allocated per scan.
	e.scans = append(e.scans, irScan{frame: frame, stmt: s, resultSet: resultSet, brk: -1})
	switch c := src.Value.(type) {
	case *ast.Array:
		for i := range c.Len() {
			if e.scanBody(ast.InternedTerm(i), c.Elem(i)) {
				break
			}
		}
	case ast.Object:
		c.Until(e.scanBodyFn)
	case ast.Set:
		c.Until(e.scanElemFn)
	}
	top := e.scans[len(e.scans)-1]
	e.scans[len(e.scans)-1] = irScan{}
	e.scans = e.scans[:len(e.scans)-1]
	return top.brk, top.ret, top.err
}

// irScan is one scan in progress.
type irScan struct {
	frame     []*ast.Term
	stmt      *ir.ScanStmt
	resultSet **ast.Term
	brk       int
	ret       bool
	err       error
}

// scanBody runs the innermost scan's body on one element; true ends the
// scan.
func (e *irEval) scanBody(k, v *ast.Term) bool {
	sc := &e.scans[len(e.scans)-1]
	if e.steps++; e.steps&1023 == 0 && e.cancel != nil && e.cancel.Cancelled() {
		sc.err = errors.New("compiled evaluation cancelled")
		return true
	}
	sc.frame[sc.stmt.Key], sc.frame[sc.stmt.Value] = k, v
	n, r, err := e.block(sc.frame, sc.stmt.Block, sc.resultSet)
	sc = &e.scans[len(e.scans)-1] // e.scans may have grown meanwhile
	switch {
	case err != nil || r:
		sc.brk, sc.ret, sc.err = n, r, err
		return true
	case n >= 2:
		sc.brk = n - 2
		return true
	case n == 1: // leave the scan
		return true
	}
	return false
}

func (e *irEval) scanElem(k *ast.Term) bool { return e.scanBody(k, k) }

// writableObject is t's object, replacing the shared empty object of
// MakeObjectStmt with a new one first.
func (e *irEval) writableObject(t *ast.Term) (ast.Object, bool) {
	obj, ok := t.Value.(ast.Object)
	if ok && obj == e.prog.emptyObject {
		obj = ast.NewObject()
		t.Value = obj
	}
	return obj, ok
}

// with runs s's block with the local (or the path in it) replaced.
func (e *irEval) with(frame []*ast.Term, s *ir.WithStmt, resultSet **ast.Term) (int, bool, error) {
	saved := frame[s.Local]
	value := e.read(frame, s.Value)
	if len(s.Path) == 0 {
		frame[s.Local] = value
	} else {
		path := make([]*ast.Term, len(s.Path))
		for i, idx := range s.Path {
			path[i] = e.prog.strings[idx]
		}
		frame[s.Local] = upsert(saved, path, value)
	}
	memo := e.memo
	e.memo = make([]irMemo, len(e.prog.funcs))
	n, r, err := e.block(frame, s.Block, resultSet)
	e.memo = memo
	frame[s.Local] = saved
	if err != nil || r {
		return n, r, err
	}
	switch {
	case n < 0: // the block held: continue after the with
		return -1, false, nil
	case n == 0:
		return 0, false, nil
	}
	return n - 1, false, nil
}

// upsert returns a copy of doc with value at path, copying each object on
// the way and creating the missing ones; doc itself is not changed.
func upsert(doc *ast.Term, path []*ast.Term, value *ast.Term) *ast.Term {
	var obj ast.Object
	if doc != nil {
		if o, ok := doc.Value.(ast.Object); ok {
			obj = o.Copy()
		}
	}
	if obj == nil {
		obj = ast.NewObject()
	}
	if len(path) == 1 {
		obj.Insert(path[0], value)
		return ast.NewTerm(obj)
	}
	obj.Insert(path[0], upsert(obj.Get(path[0]), path[1:], value))
	return ast.NewTerm(obj)
}

func (e *irEval) call(frame []*ast.Term, s *ir.CallStmt) (*ast.Term, error) {
	callee, ok := e.prog.calls[s]
	if !ok {
		return nil, fmt.Errorf("compiled evaluation: unresolved call %s: %w", s.Func, errIRUnsupported)
	}
	if fn := callee.fn; fn != nil {
		if fn.memoize && e.memo[fn.index].ok {
			return e.memo[fn.index].value, nil
		}
		callee := e.push(fn.locals)
		for i, p := range fn.params {
			callee[p] = e.read(frame, s.Args[i])
		}
		v, err := e.run(callee, fn)
		e.pop(fn.locals)
		if err != nil {
			return nil, err
		}
		if fn.memoize && v != nil {
			e.memo[fn.index] = irMemo{value: v, ok: true}
		}
		return v, nil
	}
	args := e.push(len(s.Args))
	for i, a := range s.Args {
		if args[i] = e.read(frame, a); args[i] == nil {
			e.pop(len(s.Args))
			return nil, nil
		}
	}
	e.bctx.Location = nil
	e.out = nil
	err := callee.builtin(e.bctx, args, e.onOut)
	e.pop(len(s.Args))
	out := e.out
	e.out = nil
	if err != nil {
		var halt topdown.Halt
		if errors.As(err, &halt) {
			return nil, fmt.Errorf("%s: %w", callee.name, halt.Err)
		}
		return nil, nil // undefined, as topdown outside strict mode
	}
	return out, nil
}

// run executes a function's blocks; its value is what it returns.
func (e *irEval) run(frame []*ast.Term, fn *irFunc) (*ast.Term, error) {
	for _, b := range fn.blocks {
		_, ret, err := e.block(frame, b, nil)
		if err != nil {
			return nil, err
		}
		if ret {
			v := e.ret
			e.ret = nil
			return v, nil
		}
	}
	return nil, nil
}

func dot(src ast.Value, key *ast.Term) *ast.Term {
	if key == nil {
		return nil
	}
	switch c := src.(type) {
	case ast.Object:
		return c.Get(key)
	case *ast.Array:
		n, ok := key.Value.(ast.Number)
		if !ok {
			return nil
		}
		i, ok := n.Int()
		if !ok || i < 0 || i >= c.Len() {
			return nil
		}
		return c.Elem(i)
	case ast.Set:
		if c.Contains(key) {
			return key
		}
	}
	return nil
}

func length(t *ast.Term) (int, bool) {
	if t == nil {
		return 0, false
	}
	switch c := t.Value.(type) {
	case *ast.Array:
		return c.Len(), true
	case ast.Object:
		return c.Len(), true
	case ast.Set:
		return c.Len(), true
	case ast.String:
		return len(c), true // bytes, as OPA's Wasm runtime counts
	}
	return 0, false
}

func isArray(v ast.Value) bool  { _, ok := v.(*ast.Array); return ok }
func isObject(v ast.Value) bool { _, ok := v.(ast.Object); return ok }
func isSet(v ast.Value) bool    { _, ok := v.(ast.Set); return ok }

func irConflict(loc ir.Location, msg string) error {
	return fmt.Errorf("compiled evaluation: %s (file %d, row %d)", msg, loc.File, loc.Row)
}
