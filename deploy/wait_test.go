package deploy

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/flowforge/flowforge/contract"
)

func TestWaitServed(t *testing.T) {
	hardened := func(job *batchv1.Job) (*batchv1.Job, error) {
		job.Annotations = map[string]string{contract.AnnotationPolicyRevision: "abc"}
		return job, nil
	}
	for _, tc := range []struct {
		name    string
		answers []func(*batchv1.Job) (*batchv1.Job, error)
		wantErr string
	}{
		{name: "hardened at once", answers: []func(*batchv1.Job) (*batchv1.Job, error){hardened}},
		{name: "refused by a webhook", answers: []func(*batchv1.Job) (*batchv1.Job, error){
			func(*batchv1.Job) (*batchv1.Job, error) {
				return nil, errors.New(`admission webhook "jobs.validate.flowforge.io" denied the request: no`)
			},
		}},
		{name: "after the Service is known and the configuration in force", answers: []func(*batchv1.Job) (*batchv1.Job, error){
			func(*batchv1.Job) (*batchv1.Job, error) {
				return nil, errors.New(`failed calling webhook: service "flowforge-webhook" not found`)
			},
			func(job *batchv1.Job) (*batchv1.Job, error) { return job, nil },
			hardened,
		}},
		{name: "never called", wantErr: "admitted unhardened", answers: []func(*batchv1.Job) (*batchv1.Job, error){
			func(job *batchv1.Job) (*batchv1.Job, error) { return job, nil },
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset()
			calls := 0
			cs.PrependReactor("create", "jobs", func(action k8stesting.Action) (bool, runtime.Object, error) {
				create := action.(k8stesting.CreateAction)
				require.Equal(t, "ns", create.GetNamespace())
				job := create.GetObject().(*batchv1.Job).DeepCopy()
				require.Equal(t, contract.AppName, job.Labels[contract.LabelApp])
				answer := tc.answers[min(calls, len(tc.answers)-1)]
				calls++
				got, err := answer(job)
				if err != nil {
					return true, nil, err
				}
				return true, got, nil
			})
			err := WaitServed(context.Background(), cs, "ns", 2*time.Second)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, len(tc.answers), calls)
		})
	}
}
