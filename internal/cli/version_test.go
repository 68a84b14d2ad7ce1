package cli

import (
	"encoding/json"
	"errors"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/version"
	fakediscovery "k8s.io/client-go/discovery/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"

	"github.com/flowforge/flowforge/contract"
)

func TestClientVersion(t *testing.T) {
	info := &debug.BuildInfo{Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
		{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.modified", Value: "true"}, {Key: "GOOS", Value: "linux"},
	}}
	assert.Equal(t, ClientVersion{Version: "v1.2.3", Commit: "abc123", Modified: true, GoVersion: runtime.Version()}, clientVersion(info, true))
	assert.Equal(t, ClientVersion{Version: "(devel)", GoVersion: runtime.Version()}, clientVersion(&debug.BuildInfo{}, true))
	assert.Equal(t, ClientVersion{Version: "unknown", GoVersion: runtime.Version()}, clientVersion(nil, false))
}

// revisionJob is an agent Job admitted under a policy revision.
func revisionJob(t *testing.T, id, revision string, created time.Duration) *batchv1.Job {
	return clusterJob(t, testRequest(id), func(j *batchv1.Job) {
		j.CreationTimestamp = metav1.NewTime(t0.Add(created))
		if revision != "" {
			j.Annotations[contract.AnnotationPolicyRevision] = revision
		}
	})
}

func versionHarness(t *testing.T, objs ...kruntime.Object) *harness {
	h := newHarness(t, objs...)
	h.cs.Discovery().(*fakediscovery.FakeDiscovery).FakedServerVersion = &version.Info{GitVersion: "v1.37.2", Platform: "linux/amd64"}
	return h
}

func TestVersion(t *testing.T) {
	jobsOf := func() []kruntime.Object {
		return []kruntime.Object{
			revisionJob(t, "old", "rev-old", -2*time.Hour),
			revisionJob(t, "new", "rev-new", -time.Minute),
			revisionJob(t, "unstamped", "", 0), // newest, but without a revision
			otherJob(),
		}
	}
	t.Run("table", func(t *testing.T) {
		res := versionHarness(t, jobsOf()...).run("version")
		require.Equal(t, ExitOK, res.code, res.err)
		assert.Regexp(t, `^Client Version: \S+\n`, res.out)
		assert.Contains(t, res.out, "Go Version: "+runtime.Version()+"\n")
		assert.Contains(t, res.out, "Policy Revision: rev-new (from Job flowforge-jobs/claude-job-new)\nServer Version: v1.37.2\n")
	})
	t.Run("json", func(t *testing.T) {
		res := versionHarness(t, jobsOf()...).run("version", "-o", "json")
		require.Equal(t, ExitOK, res.code, res.err)
		var v VersionInfo
		require.NoError(t, json.Unmarshal([]byte(res.out), &v))
		assert.Equal(t, &PolicyVersion{Revision: "rev-new", Job: "flowforge-jobs/claude-job-new"}, v.Policy)
		assert.Equal(t, "v1.37.2", v.Server.GitVersion)
		assert.Equal(t, runtime.Version(), v.Client.GoVersion)
		assert.NotEmpty(t, v.Client.Version)
	})
	t.Run("yaml", func(t *testing.T) {
		res := versionHarness(t, jobsOf()...).run("version", "-o", "yaml")
		require.Equal(t, ExitOK, res.code, res.err)
		var v VersionInfo
		require.NoError(t, yaml.Unmarshal([]byte(res.out), &v))
		assert.Equal(t, "rev-new", v.Policy.Revision)
	})
	t.Run("no agent Job yet", func(t *testing.T) {
		res := versionHarness(t).run("version")
		require.Equal(t, ExitOK, res.code, res.err)
		assert.Contains(t, res.out, "Policy Revision: unknown (no agent Job in namespace flowforge-jobs carries one yet)\n")
		res = versionHarness(t).run("version", "-o", "json")
		assert.NotContains(t, res.out, `"policy"`)
	})
	t.Run("--client does not need a cluster", func(t *testing.T) {
		h := versionHarness(t)
		h.clientsetErr = errors.New("no Kubernetes configuration found")
		res := h.run("version", "--client", "-o", "json")
		require.Equal(t, ExitOK, res.code, res.err)
		assert.NotContains(t, res.out, `"server"`)
		assert.Contains(t, res.out, `"client"`)
	})
	t.Run("no cluster", func(t *testing.T) {
		h := versionHarness(t)
		h.clientsetErr = errors.New("no Kubernetes configuration found")
		res := h.run("version")
		assert.Equal(t, ExitError, res.code)
		assert.Contains(t, res.out, "Client Version: ", "what is known is printed first")
		assert.Equal(t, "Error: no Kubernetes configuration found\n", res.err)
	})
	t.Run("the API server cannot say its version", func(t *testing.T) {
		h := versionHarness(t)
		h.cs.PrependReactor("get", "version", func(k8stesting.Action) (bool, kruntime.Object, error) {
			return true, nil, errors.New("connection refused")
		})
		res := h.run("version")
		assert.Equal(t, ExitError, res.code)
		assert.Equal(t, "Error: the API server's version: connection refused (--client prints the CLI's alone)\n", res.err)
	})
	t.Run("the Jobs cannot be listed", func(t *testing.T) {
		h := versionHarness(t)
		h.cs.PrependReactor("list", "jobs", func(k8stesting.Action) (bool, kruntime.Object, error) {
			return true, nil, errors.New("forbidden")
		})
		res := h.run("version", "-o", "json")
		assert.Equal(t, ExitError, res.code)
		assert.Equal(t, "Error: policy revision: list the agent Jobs in namespace flowforge-jobs: forbidden\n", res.err)
		assert.Contains(t, res.out, `"gitVersion": "v1.37.2"`, "the document still has what was read")
	})
}
