package apiserver

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/apiserver/pkg/registry/rest"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/history"
	historyv1alpha1 "github.com/flowforge/flowforge/history/apis/v1alpha1"
)

// MaxUnpagedList is the most executions one list without a limit returns;
// past it the list carries a continue token, as a paged one does, so that
// a request never holds the whole history in memory.
const MaxUnpagedList = 5000

var executionsResource = historyv1alpha1.GroupResource(historyv1alpha1.Resource)

// executionREST serves executions: get and list, read-only.
type executionREST struct {
	store history.Store
	rest.TableConvertor
}

var (
	_ rest.Storage              = (*executionREST)(nil)
	_ rest.Scoper               = (*executionREST)(nil)
	_ rest.Getter               = (*executionREST)(nil)
	_ rest.Lister               = (*executionREST)(nil)
	_ rest.SingularNameProvider = (*executionREST)(nil)
)

func newExecutionREST(store history.Store) *executionREST {
	return &executionREST{store: store, TableConvertor: tableConvertor{}}
}

func (r *executionREST) New() runtime.Object     { return &historyv1alpha1.Execution{} }
func (r *executionREST) NewList() runtime.Object { return &historyv1alpha1.ExecutionList{} }
func (r *executionREST) Destroy()                {}
func (r *executionREST) NamespaceScoped() bool   { return true }
func (r *executionREST) GetSingularName() string { return "execution" }

// Get returns the execution of a job id in the request's namespace. A job
// id recorded in another namespace is not found here: the namespace is
// what RBAC authorized.
func (r *executionREST) Get(ctx context.Context, name string, _ *metav1.GetOptions) (runtime.Object, error) {
	j, err := lookup(ctx, r.store, name)
	if err != nil {
		return nil, err
	}
	e := history.Execution(*j)
	addLabels(&e)
	return &e, nil
}

// lookup reads the record of a job id in the request's namespace.
func lookup(ctx context.Context, store history.Store, name string) (*history.Job, error) {
	ns, ok := genericapirequest.NamespaceFrom(ctx)
	if !ok || ns == "" {
		return nil, apierrors.NewBadRequest("executions are namespaced: the request names no namespace")
	}
	// The record in this namespace: the same job id may be another
	// tenant's in another namespace, newer or older.
	j, err := store.JobIn(ctx, ns, name)
	if errors.Is(err, history.ErrNotFound) {
		return nil, apierrors.NewNotFound(executionsResource, name)
	}
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("read execution %s: %w", name, err))
	}
	return j, nil
}

// List returns executions, newest first. The field selectors spec.user
// and status.phase, and the label selector user-id=U, are answered by the
// store's index; any other selector on metadata.name, metadata.namespace,
// spec.user, status.phase or the labels user-id and job-id is applied
// to the page read. limit and continue page by keyset.
func (r *executionREST) List(ctx context.Context, opts *metainternalversion.ListOptions) (runtime.Object, error) {
	ns, _ := genericapirequest.NamespaceFrom(ctx)
	f := history.Filter{Namespace: ns}
	label, field := labels.Everything(), fields.Everything()
	if opts != nil {
		if opts.LabelSelector != nil {
			label = opts.LabelSelector
		}
		if opts.FieldSelector != nil {
			field = opts.FieldSelector
		}
		f.Limit = int(opts.Limit)
		f.Continue = opts.Continue
	}
	if f.Limit < 0 {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("limit %d: want a positive number", f.Limit))
	}
	if f.Continue != "" {
		if _, _, err := history.ParseContinue(f.Continue); err != nil {
			return nil, apierrors.NewBadRequest(err.Error())
		}
	}
	if f.Limit == 0 || f.Limit > MaxUnpagedList {
		f.Limit = MaxUnpagedList
	}
	var err error
	if f.User, f.Status, err = storeFilter(label, field); err != nil {
		return nil, err
	}
	jobs, err := r.store.Jobs(ctx, f)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("list executions: %w", err))
	}
	list := &historyv1alpha1.ExecutionList{Items: make([]historyv1alpha1.Execution, 0, len(jobs))}
	for _, j := range jobs {
		if ns != "" && j.Namespace != ns {
			continue
		}
		e := history.Execution(j)
		addLabels(&e)
		if !label.Matches(labels.Set(e.Labels)) || !field.Matches(executionFields(&e)) {
			continue
		}
		list.Items = append(list.Items, e)
	}
	if len(jobs) == f.Limit {
		list.Continue = history.ContinueAfter(jobs[len(jobs)-1])
	}
	return list, nil
}

// storeFilter picks the exact user and phase a selector requires, for the
// store, and refuses selectors on fields executions do not have.
func storeFilter(label labels.Selector, field fields.Selector) (user, phase string, err error) {
	for _, req := range field.Requirements() {
		switch req.Field {
		case "metadata.name", "metadata.namespace", historyv1alpha1.FieldUser, historyv1alpha1.FieldPhase:
		default:
			return "", "", apierrors.NewBadRequest(fmt.Sprintf("field selector %q: executions select by metadata.name, metadata.namespace, %s and %s",
				req.Field, historyv1alpha1.FieldUser, historyv1alpha1.FieldPhase))
		}
	}
	user, _ = field.RequiresExactMatch(historyv1alpha1.FieldUser)
	phase, _ = field.RequiresExactMatch(historyv1alpha1.FieldPhase)
	if v, ok := label.RequiresExactMatch(contract.LabelUserID); ok {
		if user != "" && user != v {
			return "", "", apierrors.NewBadRequest(fmt.Sprintf("selectors ask for user %q and user %q", user, v))
		}
		user = v
	}
	return user, phase, nil
}

// addLabels sets the labels an execution can be selected by: the Job's
// user-id and job-id.
func addLabels(e *historyv1alpha1.Execution) {
	e.Labels = map[string]string{contract.LabelJobID: e.Name}
	if e.Spec.User != "" {
		e.Labels[contract.LabelUserID] = e.Spec.User
	}
}

// executionFields are the fields a field selector can test.
func executionFields(e *historyv1alpha1.Execution) fields.Set {
	return fields.Set{
		"metadata.name":            e.Name,
		"metadata.namespace":       e.Namespace,
		historyv1alpha1.FieldUser:  e.Spec.User,
		historyv1alpha1.FieldPhase: e.Status.Phase,
	}
}
