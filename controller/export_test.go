package controller

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
)

func TestRemoveFinalizer(t *testing.T) {
	const ours = "flowforge.io/export"
	tests := []struct {
		name    string
		stored  []string // the finalizers on the server
		seen    []string // the finalizers on the (maybe stale) cached copy
		want    []string // on the server afterwards
		wantErr bool
	}{
		{name: "only ours", stored: []string{ours}, seen: []string{ours}, want: nil},
		{name: "others kept", stored: []string{"a/b", ours, "c/d"}, seen: []string{"a/b", ours, "c/d"}, want: []string{"a/b", "c/d"}},
		{name: "not there: no call", stored: []string{"a/b"}, seen: []string{"a/b"}, want: []string{"a/b"}},
		{name: "stale copy: only ours removed", stored: []string{"a/b", ours, "c/d"}, seen: []string{ours}, want: []string{"a/b", "c/d"}},
		{name: "stale copy, already gone: nothing removed", stored: []string{"a/b"}, seen: []string{ours, "a/b"}, want: []string{"a/b"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			job := newJob("fin", func(j *batchv1.Job) { j.Finalizers = tt.stored })
			e := newEnv(t, job)
			stale := job.DeepCopy()
			stale.Finalizers = tt.seen
			require.NoError(t, RemoveFinalizer(context.Background(), e.client, stale, ours))
			var got batchv1.Job
			require.NoError(t, e.client.Get(context.Background(), client.ObjectKeyFromObject(job), &got))
			assert.Equal(t, tt.want, got.Finalizers)
		})
	}
}

func TestReleasePatchesEachObjectOnce(t *testing.T) {
	const ours = "flowforge.io/export"
	job := newJob("rel", func(j *batchv1.Job) { j.Finalizers = []string{"example.com/other", ours} })
	e := newEnv(t, job)
	patches := 0
	e.r.Client = interceptor.NewClient(e.client.(client.WithWatch), interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			patches++
			return c.Patch(ctx, obj, patch, opts...)
		},
	})
	stale := job.DeepCopy()
	require.NoError(t, e.r.release(context.Background(), stale.DeepCopy(), ours))
	require.NoError(t, e.r.release(context.Background(), stale.DeepCopy(), ours), "a stale copy that still lists it")
	assert.Equal(t, 1, patches)

	var got batchv1.Job
	require.NoError(t, e.client.Get(context.Background(), client.ObjectKeyFromObject(job), &got))
	assert.Equal(t, []string{"example.com/other"}, got.Finalizers)

	other := newJob("rel2", func(j *batchv1.Job) { j.UID = "other-uid"; j.Finalizers = []string{ours} })
	require.NoError(t, e.client.Create(context.Background(), other.DeepCopy()))
	require.NoError(t, e.r.release(context.Background(), other, ours))
	assert.Equal(t, 2, patches, "another object is released on its own")
}
