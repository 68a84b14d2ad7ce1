package history

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/history"
	"github.com/flowforge/flowforge/internal/cli"
	"github.com/flowforge/flowforge/jobs"
	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

const groupPath = "/apis/history.flowforge.io/v1alpha1"

// agentJob is a plain labelled Job whose pod prints lines.
func agentJob(id string, lines []string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:        contract.JobName(id),
			Labels:      map[string]string{contract.LabelApp: contract.AppName, contract.LabelJobID: id, contract.LabelUserID: "alice"},
			Annotations: map[string]string{contract.AnnotationRepository: "acme/widgets", contract.AnnotationBranch: "main"},
		},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{
				localcluster.AnnotationLogs:        strings.Join(lines, "\n"),
				localcluster.AnnotationLogInterval: "50ms",
				localcluster.AnnotationDuration:    "1s",
			}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "worker", Image: "ghcr.io/flowforge/claude-worker:1.4.0"}}},
		}},
	}
}

// runToHistory runs a Job to completion, deletes it (as its TTL would),
// and waits until the cluster no longer has it and its exported record is
// served by the history API to the admin.
func runToHistory(ctx context.Context, ns, id string, lines []string) error {
	name := contract.JobName(id)
	if _, err := clientset.BatchV1().Jobs(ns).Create(ctx, agentJob(id, lines), metav1.CreateOptions{}); err != nil {
		return err
	}
	if _, err := framework.WaitForJobCondition(ctx, clientset, ns, name, batchv1.JobComplete); err != nil {
		return err
	}
	if err := clientset.BatchV1().Jobs(ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: new(metav1.DeletePropagationForeground)}); err != nil {
		return err
	}
	admin, err := history.NewAPIClient(testCluster.RESTConfig, ns)
	if err != nil {
		return err
	}
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		if _, err := clientset.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			return false, nil
		}
		rec, err := admin.Job(ctx, id)
		return err == nil && rec.Exported != nil, nil
	})
}

// reader creates a service account in ns bound (RoleBinding in ns) to the
// ClusterRole role, and returns a token of it.
func reader(t *testing.T, ns, name, role string) string {
	t.Helper()
	ctx := context.Background()
	if role != "" {
		_, err := clientset.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = clientset.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: ns}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	tr, err := clientset.CoreV1().ServiceAccounts(ns).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: new(int64(3600))},
	}, metav1.CreateOptions{})
	require.NoError(t, err)
	return tr.Status.Token
}

// tokenConfig is a client configuration with only a bearer token.
func tokenConfig(token string) *rest.Config {
	return &rest.Config{Host: testCluster.Server, BearerToken: token, TLSClientConfig: rest.TLSClientConfig{CAData: testCluster.CACertPEM}}
}

func historyClient(t *testing.T, cfg *rest.Config, ns string) *history.APIClient {
	t.Helper()
	c, err := history.NewAPIClient(cfg, ns)
	require.NoError(t, err)
	return c
}

// rbacSettled waits until the aggregated ClusterRoles grant a token what
// they should (the aggregation controller fills view, edit and admin in
// the background): until it reads its own namespace.
func rbacSettled(t *testing.T, cfg *rest.Config, ns, id string) {
	t.Helper()
	c := historyClient(t, cfg, ns)
	var last error
	err := wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		_, last = c.Job(ctx, id)
		return last == nil, nil
	})
	require.NoError(t, err, "the role never let the service account read its namespace's history: %v", last)
}

func TestHistoryAPI(t *testing.T) {
	ctx := context.Background()
	// Namespace A is where the CLI and `make up` run agents; B is another
	// team's.
	nsA := jobs.DefaultNamespace
	if _, err := clientset.CoreV1().Namespaces().Get(ctx, nsA, metav1.GetOptions{}); apierrors.IsNotFound(err) {
		require.NoError(t, localcluster.CreateNamespace(ctx, clientset, nsA, nil))
	}
	nsB := framework.Namespace(t, clientset, "team-b", nil)
	linesA := []string{"cloning acme/widgets", "editing", "pushed"}
	linesB := []string{"team b's secret work"}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, run := range []func() error{
		func() error { return runToHistory(ctx, nsA, "ha1", linesA) },
		func() error { return runToHistory(ctx, nsB, "hb1", linesB) },
	} {
		wg.Go(func() { errs[i] = run() })
	}
	wg.Wait()
	require.NoError(t, errs[0], "job ha1 in %s", nsA)
	require.NoError(t, errs[1], "job hb1 in %s", nsB)

	t.Run("unauthenticated requests get 401", func(t *testing.T) {
		// Through the API server, with a token it does not know.
		_, err := historyClient(t, tokenConfig("not-a-token"), nsA).Job(ctx, "ha1")
		require.Error(t, err)
		assert.True(t, apierrors.IsUnauthorized(err), "got %v", err)

		// Straight to the history API's Service address, without the
		// front proxy's client certificate: headers naming a user are
		// not believed.
		pool := x509.NewCertPool()
		require.True(t, pool.AppendCertsFromPEM(ctl.HistoryAPI.CAPEM))
		direct := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "flowforge-history.flowforge-system.svc", MinVersion: tls.VersionTLS12}}}
		for _, headers := range []map[string]string{
			{},
			{"X-Remote-User": "system:admin", "X-Remote-Group": "system:masters"},
		} {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, ctl.HistoryAPI.URL+groupPath+"/namespaces/"+nsA+"/executions/ha1", nil)
			require.NoError(t, err)
			for k, v := range headers {
				req.Header.Set(k, v)
			}
			resp, err := direct.Do(req)
			require.NoError(t, err)
			_ = resp.Body.Close()
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode, "headers %v", headers)
		}

		// Anonymous through the API server: it authenticates the request
		// as system:anonymous, which RBAC refuses.
		_, err = historyClient(t, &rest.Config{Host: testCluster.Server, TLSClientConfig: rest.TLSClientConfig{CAData: testCluster.CACertPEM}}, nsA).Job(ctx, "ha1")
		require.Error(t, err)
		assert.True(t, apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err), "got %v", err)
	})

	for _, role := range []string{"view", "edit", "admin"} {
		t.Run("a service account with "+role+" in namespace A", func(t *testing.T) {
			cfg := tokenConfig(reader(t, nsA, "reader-"+role, role))
			rbacSettled(t, cfg, nsA, "ha1")
			own := historyClient(t, cfg, nsA)
			rec, err := own.Job(ctx, "ha1")
			require.NoError(t, err)
			assert.Equal(t, "alice", rec.User)
			assert.Equal(t, history.StatusSucceeded, rec.Status)
			assert.Equal(t, "acme/widgets", rec.Repository)
			assert.NotEmpty(t, rec.Attempts)
			list, err := own.Jobs(ctx, "alice", "", time.Time{}, 0)
			require.NoError(t, err)
			require.Len(t, list, 1)
			assert.Equal(t, "ha1", list[0].ID)
			var logs bytes.Buffer
			require.NoError(t, own.Logs(ctx, "ha1", 0, "", &logs))
			assert.Equal(t, strings.Join(linesA, "\n")+"\n", logs.String())

			other := historyClient(t, cfg, nsB)
			_, err = other.Job(ctx, "hb1")
			assert.True(t, apierrors.IsForbidden(err), "get in B: %v", err)
			err = other.Logs(ctx, "hb1", 0, "", &logs)
			assert.True(t, apierrors.IsForbidden(err), "logs in B: %v", err)
			_, err = other.Jobs(ctx, "", "", time.Time{}, 0)
			assert.True(t, apierrors.IsForbidden(err), "list in B: %v", err)
			_, err = historyClient(t, cfg, "").Jobs(ctx, "", "", time.Time{}, 0)
			assert.True(t, apierrors.IsForbidden(err), "list in every namespace: %v", err)
			// Namespace B's job asked for in A is not there (a job id
			// names a Job in one namespace).
			_, err = own.Job(ctx, "hb1")
			assert.ErrorIs(t, err, history.ErrNotFound)
		})
	}

	t.Run("an agent pod's token reads nothing", func(t *testing.T) {
		// The agent Job's pod runs as its namespace's default service
		// account (the Job names none).
		cfg := tokenConfig(reader(t, nsA, "default", ""))
		c := historyClient(t, cfg, nsA)
		_, err := c.Job(ctx, "ha1")
		assert.True(t, apierrors.IsForbidden(err), "get: %v", err)
		var logs bytes.Buffer
		err = c.Logs(ctx, "ha1", 0, "", &logs)
		assert.True(t, apierrors.IsForbidden(err), "logs: %v", err)
		_, err = c.Jobs(ctx, "", "", time.Time{}, 0)
		assert.True(t, apierrors.IsForbidden(err), "list: %v", err)
		assert.Empty(t, logs.String())
	})

	t.Run("kubectl", func(t *testing.T) {
		out := kubectl(t, "get", "executions", "-n", nsA)
		rows := strings.Split(strings.TrimSpace(out), "\n")
		require.Len(t, rows, 2, out)
		assert.Equal(t, []string{"NAME", "USER", "PHASE", "REPOSITORY", "BRANCH", "DURATION", "EXPORTED", "AGE"}, strings.Fields(rows[0]))
		assert.Equal(t, []string{"ha1", "alice", "Succeeded", "acme/widgets", "main"}, strings.Fields(rows[1])[:5])
		out = kubectl(t, "get", "--raw", groupPath+"/namespaces/"+nsA+"/executions/ha1/log")
		assert.Equal(t, strings.Join(linesA, "\n")+"\n", out)
		out = kubectl(t, "get", "execution", "ha1", "-n", nsA, "-o", "jsonpath={.spec.jobName} {.status.phase}")
		assert.Equal(t, contract.JobName("ha1")+" Succeeded", out)
		out = kubectl(t, "get", "executions", "-A", "--field-selector", "spec.user=alice", "-o", "name")
		assert.Contains(t, out, "execution.history.flowforge.io/ha1")
		assert.Contains(t, out, "execution.history.flowforge.io/hb1")
	})

	t.Run("the CLI reads the history through the API server", func(t *testing.T) {
		kubeconfig := writeKubeconfig(t, reader(t, nsA, "cli-user", "view"))
		rbacSettled(t, tokenConfig(reader(t, nsA, "cli-user", "")), nsA, "ha1")
		res := flowforge(t, "--kubeconfig", kubeconfig, "-n", nsA, "history")
		require.Equal(t, 0, res.code, res.err)
		rows := strings.Split(strings.TrimSpace(res.out), "\n")
		require.Len(t, rows, 2, res.out)
		assert.Equal(t, []string{"ha1", "alice", "Succeeded"}, strings.Fields(rows[1])[:3])

		res = flowforge(t, "--kubeconfig", kubeconfig, "-n", nsA, "status", "ha1")
		require.Equal(t, 0, res.code, res.err)
		assert.Contains(t, res.out, "Succeeded")

		res = flowforge(t, "--kubeconfig", kubeconfig, "-n", nsA, "logs", "ha1")
		require.Equal(t, 0, res.code, res.err)
		assert.Equal(t, strings.Join(linesA, "\n")+"\n", res.out)

		res = flowforge(t, "--kubeconfig", kubeconfig, "-n", nsB, "logs", "hb1")
		assert.NotEqual(t, 0, res.code)
		assert.Contains(t, res.err, "forbidden")
		assert.NotContains(t, res.out, linesB[0])
	})
}

// kubectl runs bin/kubectl as the cluster admin and returns its output.
func kubectl(t *testing.T, args ...string) string {
	t.Helper()
	root, err := localcluster.ModuleRoot()
	require.NoError(t, err)
	cmd := exec.Command(filepath.Join(root, "bin", "kubectl"), append([]string{"--kubeconfig", testCluster.KubeconfigPath}, args...)...) //nolint:gosec // the test's kubectl
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "kubectl %v: %s", args, stderr.String())
	return stdout.String()
}

// writeKubeconfig writes a kubeconfig that authenticates with token.
func writeKubeconfig(t *testing.T, token string) string {
	t.Helper()
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["local"] = &clientcmdapi.Cluster{Server: testCluster.Server, CertificateAuthorityData: testCluster.CACertPEM}
	cfg.AuthInfos["user"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["local"] = &clientcmdapi.Context{Cluster: "local", AuthInfo: "user"}
	cfg.CurrentContext = "local"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, clientcmd.WriteToFile(*cfg, path))
	return path
}

type result struct {
	code     int
	out, err string
}

// flowforge runs the CLI in this process, as a user runs it.
func flowforge(t *testing.T, args ...string) result {
	t.Helper()
	t.Setenv("KUBECONFIG", os.DevNull)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code := cli.Execute(ctx, args, cli.Streams{In: strings.NewReader(""), Out: &out, Err: &errb})
	return result{code: code, out: out.String(), err: fmt.Sprint(errb.String())}
}
