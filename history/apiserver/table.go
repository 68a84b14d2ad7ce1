package apiserver

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/duration"

	historyv1alpha1 "github.com/flowforge/flowforge/history/apis/v1alpha1"
)

// tableConvertor prints executions for kubectl get.
type tableConvertor struct{}

var columns = []metav1.TableColumnDefinition{
	{Name: "Name", Type: "string", Format: "name", Description: "The job id."},
	{Name: "User", Type: "string", Description: "Who ran the job (its user-id label)."},
	{Name: "Phase", Type: "string", Description: "Pending, Running, Succeeded, Failed, TimedOut or Cancelled."},
	{Name: "Repository", Type: "string", Description: "The git repository."},
	{Name: "Branch", Type: "string", Description: "The git branch."},
	{Name: "Duration", Type: "string", Description: "From start to finish (or until now)."},
	{Name: "Exported", Type: "string", Description: "Whether the history of the job is complete (exported before deletion)."},
	{Name: "Age", Type: "string", Description: "Since the job was created."},
	{Name: "Job", Type: "string", Priority: 1, Description: "The name of the batch/v1 Job."},
	{Name: "Attempts", Type: "integer", Priority: 1, Description: "Pods the job ran (get only; lists leave attempts out)."},
	{Name: "Message", Type: "string", Priority: 1, Description: "Why the job ended as it did."},
}

// ConvertToTable prints one execution or a list.
func (tableConvertor) ConvertToTable(_ context.Context, obj runtime.Object, _ runtime.Object) (*metav1.Table, error) {
	t := &metav1.Table{ColumnDefinitions: columns}
	switch o := obj.(type) {
	case *historyv1alpha1.Execution:
		t.Rows = []metav1.TableRow{row(o, time.Now())}
		t.ResourceVersion = o.ResourceVersion
	case *historyv1alpha1.ExecutionList:
		now := time.Now()
		t.Rows = make([]metav1.TableRow, 0, len(o.Items))
		for i := range o.Items {
			t.Rows = append(t.Rows, row(&o.Items[i], now))
		}
		t.Continue = o.Continue
		t.ResourceVersion = o.ResourceVersion
	default:
		return nil, fmt.Errorf("cannot print %T as executions", obj)
	}
	if m, err := meta.ListAccessor(obj); err == nil {
		t.RemainingItemCount = m.GetRemainingItemCount()
	}
	return t, nil
}

func row(e *historyv1alpha1.Execution, now time.Time) metav1.TableRow {
	exported := "no"
	if e.Status.ExportTime != nil {
		exported = "yes"
	}
	return metav1.TableRow{
		Object: runtime.RawExtension{Object: e},
		Cells: []any{
			e.Name, dash(e.Spec.User), dash(e.Status.Phase), dash(e.Spec.Repository), dash(e.Spec.Branch),
			span(e.Status.StartTime, e.Status.CompletionTime, now), exported, duration.HumanDuration(now.Sub(e.CreationTimestamp.Time)),
			e.Spec.JobName, int64(len(e.Status.Attempts)), dash(e.Status.Message),
		},
	}
}

// span is a job's running time: start to finish, or to now while it runs.
func span(start, end *metav1.Time, now time.Time) string {
	if start == nil {
		return "-"
	}
	stop := now
	if end != nil {
		stop = end.Time
	}
	return duration.HumanDuration(stop.Sub(start.Time))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
