package jobs

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/flowforge/flowforge/contract"
)

// Status returns the status of a job.
func (c *Client) Status(ctx context.Context, id string) (*contract.Status, error) {
	job, err := c.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	s := contract.StatusOf(job)
	return &s, nil
}

// ListOptions filter List.
type ListOptions struct {
	// UserID keeps the jobs of one user (server-side, by label).
	UserID string
	// Phase keeps the jobs in one phase.
	Phase contract.Phase
}

// listPageSize bounds one page of a List.
const listPageSize = 250

// List returns the FlowForge jobs of the namespace, oldest first.
func (c *Client) List(ctx context.Context, opts ListOptions) ([]contract.Status, error) {
	selector := labels.NewSelector()
	app, _ := labels.NewRequirement(contract.LabelApp, selection.Equals, []string{contract.AppName})
	id, _ := labels.NewRequirement(contract.LabelJobID, selection.Exists, nil)
	selector = selector.Add(*app, *id)
	if opts.UserID != "" {
		if msgs := validation.IsValidLabelValue(opts.UserID); len(msgs) > 0 {
			return nil, fmt.Errorf("list jobs: user id %q is not a valid label value", opts.UserID)
		}
		user, _ := labels.NewRequirement(contract.LabelUserID, selection.Equals, []string{opts.UserID})
		selector = selector.Add(*user)
	}
	var out []contract.Status
	cont := ""
	for {
		var page *batchv1.JobList
		err := c.call(ctx, fmt.Sprintf("list jobs in namespace %s", c.opts.Namespace), func(ctx context.Context) error {
			var err error
			page, err = c.cs.BatchV1().Jobs(c.opts.Namespace).List(ctx, metav1.ListOptions{
				LabelSelector: selector.String(), Limit: listPageSize, Continue: cont,
			})
			return err
		})
		if err != nil {
			return nil, err
		}
		for i := range page.Items {
			s := contract.StatusOf(&page.Items[i])
			if opts.Phase == "" || s.Phase == opts.Phase {
				out = append(out, s)
			}
		}
		if cont = page.Continue; cont == "" {
			break
		}
	}
	slices.SortStableFunc(out, func(a, b contract.Status) int {
		var ta, tb time.Time
		if a.Created != nil {
			ta = *a.Created
		}
		if b.Created != nil {
			tb = *b.Created
		}
		return cmp.Or(ta.Compare(tb), cmp.Compare(a.Name, b.Name))
	})
	return out, nil
}
