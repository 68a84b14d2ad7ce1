package serving

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/deploy"
	"github.com/flowforge/flowforge/test/framework"
	"github.com/flowforge/flowforge/test/localcluster"
)

// job is a legitimate labelled Job: the webhook hardens and admits it.
func job(name string) *batchv1.Job {
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:   name,
			Labels: map[string]string{contract.LabelApp: contract.AppName, "job-id": name, "user-id": "u-1"},
		},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Annotations: map[string]string{localcluster.AnnotationDuration: "200ms"}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{
				Name:  "worker",
				Image: "ghcr.io/flowforge/claude-worker:1.4.0",
			}}},
		}},
	}
}

// TestWebhooksAreRegisteredWithServiceReferences: what the cluster holds
// is what deploy/ ships, `service:` references and no url, and the Service
// has its address in the cluster's own loopback range.
func TestWebhooksAreRegisteredWithServiceReferences(t *testing.T) {
	ctx := context.Background()
	m, err := clientset.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "flowforge-mutating", metav1.GetOptions{})
	require.NoError(t, err)
	v, err := clientset.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "flowforge-validating", metav1.GetOptions{})
	require.NoError(t, err)
	deployedM, deployedV, err := deploy.WebhookConfigurations()
	require.NoError(t, err)
	require.Len(t, m.Webhooks, len(deployedM.Webhooks))
	require.Len(t, v.Webhooks, len(deployedV.Webhooks))
	configs := map[string]admissionregistrationv1.WebhookClientConfig{}
	for _, w := range m.Webhooks {
		configs[w.Name] = w.ClientConfig
	}
	for _, w := range v.Webhooks {
		configs[w.Name] = w.ClientConfig
	}
	for name, cc := range configs {
		assert.Nil(t, cc.URL, "%s: no url", name)
		if assert.NotNil(t, cc.Service, name) {
			assert.Equal(t, deploy.WebhookServiceName, cc.Service.Name, name)
			assert.Equal(t, deploy.Namespace, cc.Service.Namespace, name)
			require.NotNil(t, cc.Service.Port, name)
			assert.Equal(t, int32(hook.Port), *cc.Service.Port, name) //nolint:gosec // a port
		}
		assert.NotEmpty(t, cc.CABundle, name)
	}

	svc, err := clientset.CoreV1().Services(deploy.Namespace).Get(ctx, deploy.WebhookServiceName, metav1.GetOptions{})
	require.NoError(t, err)
	require.Equal(t, hook.ClusterIP, svc.Spec.ClusterIP)
	_, serviceRange, err := net.ParseCIDR(testCluster.ServiceCIDR)
	require.NoError(t, err)
	ip := net.ParseIP(svc.Spec.ClusterIP)
	assert.True(t, serviceRange.Contains(ip), "%s in %s", ip, serviceRange)
	assert.True(t, ip.IsLoopback(), "%s is a loopback address", ip)
	want, err := testCluster.ClusterIP(localcluster.WebhookServiceHost)
	require.NoError(t, err)
	assert.Equal(t, want, svc.Spec.ClusterIP)
	assert.Equal(t, fmt.Sprintf("https://%s", net.JoinHostPort(want, strconv.Itoa(hook.Port))), hook.URL)
	kubernetes, err := clientset.CoreV1().Services(metav1.NamespaceDefault).Get(ctx, "kubernetes", metav1.GetOptions{})
	require.NoError(t, err)
	assert.True(t, serviceRange.Contains(net.ParseIP(kubernetes.Spec.ClusterIP)), "the API server allocates from the same range")
}

// TestTheAPIServerDialsTheClusterIP: after an admission, kube-apiserver
// itself holds a TCP connection to the Service's clusterIP:port.
func TestTheAPIServerDialsTheClusterIP(t *testing.T) {
	ns := framework.Namespace(t, clientset, "dial", framework.RestrictedLabels())
	ctx := context.Background()
	created, err := clientset.BatchV1().Jobs(ns).Create(ctx, job("dial"), metav1.CreateOptions{})
	require.NoError(t, err)
	require.NotEmpty(t, created.Annotations[contract.AnnotationPolicyRevision], "hardened through the Service")

	pid, ok := testCluster.Pids()["kube-apiserver"]
	require.True(t, ok)
	conns, err := connectionsTo(pid, hook.ClusterIP, hook.Port)
	require.NoError(t, err)
	assert.Positive(t, conns, "kube-apiserver (pid %d) has no connection to %s:%d", pid, hook.ClusterIP, hook.Port)
}

// connectionsTo counts the established TCP connections of process pid to
// ip:port, from /proc: the sockets among its file descriptors whose
// remote address it is.
func connectionsTo(pid int, ip string, port int) (int, error) {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err == nil && strings.HasPrefix(target, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	v4 := net.ParseIP(ip).To4()
	if v4 == nil {
		return 0, fmt.Errorf("%s is not IPv4", ip)
	}
	// /proc/net/tcp prints the address as a host-order (little-endian) word.
	addr := make([]byte, 4)
	binary.LittleEndian.PutUint32(addr, binary.BigEndian.Uint32(v4))
	remote := strings.ToUpper(hex.EncodeToString(addr)) + fmt.Sprintf(":%04X", port)
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close() //nolint:errcheck // read-only
	n := 0
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
		if len(fields) < 10 || fields[2] != remote || fields[3] != "01" {
			continue
		}
		if inodes[fields[9]] {
			n++
		}
	}
	return n, scanner.Err()
}

// createPastClosedConnection creates a Job, once more (up to three times)
// if the API server's call to the webhook failed on a connection the
// stopped replica had closed: the API server keeps idle HTTP/1.1
// connections to the webhook's address and does not retry a webhook call
// whose connection the server closed under it (docs/operations.md, the
// drain). Any other error, or a fourth failure, is returned.
func createPastClosedConnection(ctx context.Context, t *testing.T, ns string, j *batchv1.Job) (*batchv1.Job, error) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		created, err := clientset.BatchV1().Jobs(ns).Create(ctx, j, metav1.CreateOptions{})
		if err == nil || attempt == 3 || !closedWebhookConnection(err) {
			return created, err
		}
		t.Logf("create %s, attempt %d: %v (a connection the stopped replica closed)", j.Name, attempt, err)
	}
}

func closedWebhookConnection(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "failed to call webhook") &&
		(strings.Contains(msg, "broken pipe") || strings.Contains(msg, "connection reset by peer") || strings.HasSuffix(msg, ": EOF"))
}

// TestEveryReplicaServesAlone: with either replica stopped, the other
// answers every admission, so both serve behind the Service.
func TestEveryReplicaServesAlone(t *testing.T) {
	require.Len(t, hook.Replicas, framework.DefaultWebhookReplicas)
	ns := framework.Namespace(t, clientset, "alone", framework.RestrictedLabels())
	ctx := context.Background()
	for i := range hook.Replicas {
		require.NoError(t, hook.StopReplica(i))
		for k := range 5 {
			created, err := createPastClosedConnection(ctx, t, ns, job(fmt.Sprintf("alone-%d-%d", i, k)))
			require.NoError(t, err, "replica %d stopped", i)
			require.NotEmpty(t, created.Annotations[contract.AnnotationPolicyRevision])
		}
		require.NoError(t, hook.StartReplica(ctx, i))
	}
}

// TestZeroFailedAdmissionsWhileAReplicaRestarts streams labelled Job
// creates through the API server while each replica in turn stops
// gracefully (as a pod does on SIGTERM) and starts again. Every create
// succeeds, hardened, and so does every Pod the Job controller creates.
func TestZeroFailedAdmissionsWhileAReplicaRestarts(t *testing.T) {
	ns := framework.Namespace(t, clientset, "restart", framework.RestrictedLabels())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var (
		total, failed atomic.Int64
		mu            sync.Mutex
		failures      []string
		wg            sync.WaitGroup
		seq           atomic.Int64
		// phase counts the admissions while each replica stops and is
		// down.
		phase atomic.Pointer[atomic.Int64]
	)
	const workers = 4
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(100 * time.Millisecond) // up to 10/s per worker
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				name := fmt.Sprintf("stream-%d", seq.Add(1))
				created, err := clientset.BatchV1().Jobs(ns).Create(context.Background(), job(name), metav1.CreateOptions{})
				total.Add(1)
				if p := phase.Load(); p != nil {
					p.Add(1)
				}
				if err == nil && created.Annotations[contract.AnnotationPolicyRevision] == "" {
					err = fmt.Errorf("admitted unhardened")
				}
				if err != nil {
					failed.Add(1)
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s: %v", name, err))
					mu.Unlock()
				}
			}
		}()
	}
	settle := func() { time.Sleep(2 * time.Second) }
	settle()
	down := make([]*atomic.Int64, len(hook.Replicas))
	for i := range hook.Replicas {
		down[i] = &atomic.Int64{}
		phase.Store(down[i])
		require.NoError(t, hook.StopReplica(i))
		settle()
		phase.Store(nil)
		require.NoError(t, hook.StartReplica(context.Background(), i))
		settle()
	}
	cancel()
	wg.Wait()
	t.Logf("%d Job creates, %d failed; while replica 0 stopped and was down: %d, replica 1: %d", total.Load(), failed.Load(), down[0].Load(), down[1].Load())
	require.Zero(t, failed.Load(), "failed admissions:\n%s", strings.Join(failures, "\n"))
	for i, n := range down {
		require.Positive(t, n.Load(), "no admission while replica %d was down: the test proved nothing", i)
	}

	// The Job controller's Pod creates went through the pod webhooks too:
	// none failed (it would record a FailedCreate event).
	require.NoError(t, wait.PollUntilContextTimeout(context.Background(), 200*time.Millisecond, framework.DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		pods, err := clientset.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		return int64(len(pods.Items)) >= total.Load(), nil
	}), "every Job got its pod")
	events, err := clientset.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "reason=FailedCreate"})
	require.NoError(t, err)
	for _, e := range events.Items {
		t.Errorf("%s %s: %s", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Message)
	}
}
