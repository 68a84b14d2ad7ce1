package localcluster

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/flowforge/flowforge/certs"
)

// Resource metrics (Options.ResourceMetrics): kwok plays each node's
// kubelet /metrics/resource endpoint (a kwok Metric, served at
// /metrics/nodes/<node>/metrics/resource, which the node's
// metrics.k8s.io/resource-metrics-path annotation points metrics-server
// at), with usage from a ClusterResourceUsage: a pod's containers each use
// the CPU and memory its annotations say. metrics-server (built from its Go
// module, tools/go.mod) scrapes them and serves metrics.k8s.io as an
// aggregated API, registered like the history API: an APIService whose
// Service has a fixed clusterIP in the cluster's loopback range, on which
// metrics-server listens.
const (
	// MetricsServerServiceHost is metrics-server's clusterIP: 127.99.X.12.
	MetricsServerServiceHost = 12
	// AnnotationUsageCPU and AnnotationUsageMemory, on a pod (copied from
	// the Job's pod template), set what each of its containers uses, as
	// quantities ("500m", "64Mi"). Default: 1m and 1Mi.
	AnnotationUsageCPU    = "sim.flowforge.io/usage-cpu"
	AnnotationUsageMemory = "sim.flowforge.io/usage-memory"
	// MetricsServerResolution is how often metrics-server scrapes (its
	// minimum): a pod's CPU shows after two scrapes.
	MetricsServerResolution = 10 * time.Second
	// resourceMetricsPathAnnotation tells metrics-server where a node's
	// resource metrics are (kwok serves every node on one port).
	resourceMetricsPathAnnotation = "metrics.k8s.io/resource-metrics-path"
	metricsServerName             = "metrics-server"
)

var apiServiceGVR = schema.GroupVersionResource{Group: "apiregistration.k8s.io", Version: "v1", Resource: "apiservices"}

// kwokResourceMetricsConfig is appended to kwok's configuration: kwok's
// own metrics-resource Metric (sigs.k8s.io/kwok v0.8.0,
// kustomize/metrics/resource), reduced to what metrics-server reads, and a
// usage taken from the pod's annotations.
const kwokResourceMetricsConfig = `---
kind: Metric
apiVersion: kwok.x-k8s.io/v1alpha1
metadata:
  name: metrics-resource
spec:
  path: "/metrics/nodes/{nodeName}/metrics/resource"
  metrics:
  - name: scrape_error
    dimension: node
    help: 1 if there was an error while getting metrics from the node, 0 otherwise
    kind: gauge
    value: '0'
  - name: container_start_time_seconds
    dimension: container
    help: Start time of the container since unix epoch in seconds
    kind: gauge
    labels:
    - {name: container, value: 'container.name'}
    - {name: namespace, value: 'pod.metadata.namespace'}
    - {name: pod, value: 'pod.metadata.name'}
    value: 'pod.SinceSecond()'
  - name: container_cpu_usage_seconds_total
    dimension: container
    help: Cumulative cpu time consumed by the container in core-seconds
    kind: counter
    labels:
    - {name: container, value: 'container.name'}
    - {name: namespace, value: 'pod.metadata.namespace'}
    - {name: pod, value: 'pod.metadata.name'}
    value: 'pod.CumulativeUsage("cpu", container.name)'
  - name: container_memory_working_set_bytes
    dimension: container
    help: Current working set of the container in bytes
    kind: gauge
    labels:
    - {name: container, value: 'container.name'}
    - {name: namespace, value: 'pod.metadata.namespace'}
    - {name: pod, value: 'pod.metadata.name'}
    value: 'pod.Usage("memory", container.name)'
  - name: node_cpu_usage_seconds_total
    dimension: node
    help: Cumulative cpu time consumed by the node in core-seconds
    kind: counter
    value: 'node.CumulativeUsage("cpu")'
  - name: node_memory_working_set_bytes
    dimension: node
    help: Current working set of the node in bytes
    kind: gauge
    value: 'node.Usage("memory")'
---
apiVersion: kwok.x-k8s.io/v1alpha1
kind: ClusterResourceUsage
metadata:
  name: usage-from-annotation
spec:
  usages:
  - usage:
      cpu:
        expression: |
          "` + AnnotationUsageCPU + `" in pod.metadata.annotations
          ? Quantity(pod.metadata.annotations["` + AnnotationUsageCPU + `"])
          : Quantity("1m")
      memory:
        expression: |
          "` + AnnotationUsageMemory + `" in pod.metadata.annotations
          ? Quantity(pod.metadata.annotations["` + AnnotationUsageMemory + `"])
          : Quantity("1Mi")
`

// nodeMetricsAnnotations are the annotations a node gets when the cluster
// plays resource metrics.
func nodeMetricsAnnotations(node string) map[string]string {
	return map[string]string{resourceMetricsPathAnnotation: "/metrics/nodes/" + node + "/metrics/resource"}
}

// metricsServerSpec records metrics-server's command line; it listens on
// its Service's clusterIP, with a certificate the APIService trusts.
func (c *Cluster) metricsServerSpec() (caPEM []byte, clusterIP string, port int, err error) {
	if clusterIP, err = c.ClusterIP(MetricsServerServiceHost); err != nil {
		return nil, "", 0, err
	}
	if port, err = ServicePort(clusterIP, 443); err != nil {
		return nil, "", 0, err
	}
	dir := filepath.Join(c.Dir, metricsServerName)
	files, err := certs.WriteSelfSigned(dir, []string{metricsServerName + ".kube-system.svc", clusterIP}, time.Now(), certValidity)
	if err != nil {
		return nil, "", 0, fmt.Errorf("local cluster: metrics-server certificate: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.specs[metricsServerName] = componentSpec{bin: metricsServerName, args: []string{
		"--bind-address=" + clusterIP,
		fmt.Sprintf("--secure-port=%d", port),
		"--tls-cert-file=" + files.CertPath,
		"--tls-private-key-file=" + files.KeyPath,
		"--kubeconfig=" + c.KubeconfigPath,
		"--authentication-kubeconfig=" + c.KubeconfigPath,
		"--authorization-kubeconfig=" + c.KubeconfigPath,
		"--requestheader-client-ca-file=" + c.pki.frontProxyCA,
		"--requestheader-allowed-names=" + FrontProxyClientName,
		"--requestheader-username-headers=X-Remote-User",
		"--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		// kwok's kubelet server: 127.0.0.1 (InternalIP) at the node's
		// status port, with kwok's certificate for a name it is not
		// dialled by.
		"--kubelet-preferred-address-types=InternalIP",
		"--kubelet-use-node-status-port",
		"--kubelet-insecure-tls",
		"--metric-resolution=" + MetricsServerResolution.String(),
		// Under the resolution, as metrics-server requires.
		"--kubelet-request-timeout=5s",
		"--profiling=false",
		"--v=1",
	}}
	return files.CAPEM, clusterIP, port, nil
}

// startMetricsServer starts metrics-server, registers it as the
// metrics.k8s.io APIService and waits until the API server serves it.
func (c *Cluster) startMetricsServer(ctx context.Context, cs kubernetes.Interface) error {
	if _, err := os.Stat(filepath.Join(c.opts.BinDir, metricsServerName)); err != nil {
		return fmt.Errorf("local cluster: metrics-server is missing from %s; run `make tools` first: %w", c.opts.BinDir, err)
	}
	caPEM, clusterIP, port, err := c.metricsServerSpec()
	if err != nil {
		return err
	}
	if err := c.launch(metricsServerName); err != nil {
		return err
	}
	hc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // loopback liveness check
	live := "https://" + net.JoinHostPort(clusterIP, strconv.Itoa(port)) + "/livez"
	if err := c.procs[metricsServerName].waitFor(ctx, "live", func(ctx context.Context) error { return httpOK(ctx, hc, live, "ok") }); err != nil {
		return err
	}
	if err := registerMetricsServer(ctx, cs, c, clusterIP, port, caPEM); err != nil {
		return err
	}
	path := "/apis/metrics.k8s.io/v1beta1"
	return c.procs[metricsServerName].waitFor(ctx, "served as "+path, func(ctx context.Context) error {
		return cs.Discovery().RESTClient().Get().AbsPath(path).Do(ctx).Error()
	})
}

// registerMetricsServer creates metrics-server's Service (its fixed
// clusterIP), an EndpointSlice (the aggregator's availability check wants
// a ready endpoint; the API server dials the clusterIP) and the
// v1beta1.metrics.k8s.io APIService.
func registerMetricsServer(ctx context.Context, cs kubernetes.Interface, c *Cluster, clusterIP string, port int, caPEM []byte) error {
	p := int32(port) //nolint:gosec // a port
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: metricsServerName, Namespace: metav1.NamespaceSystem},
		Spec: corev1.ServiceSpec{ClusterIP: clusterIP, Ports: []corev1.ServicePort{{
			Name: "https", Port: p, TargetPort: intstr.FromInt32(p), Protocol: corev1.ProtocolTCP,
		}}},
	}
	if _, err := cs.CoreV1().Services(svc.Namespace).Create(ctx, svc, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("local cluster: metrics-server Service: %w", err)
	}
	ready := true
	name, proto := "https", corev1.ProtocolTCP
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: metricsServerName + "-local", Namespace: metav1.NamespaceSystem,
			Labels: map[string]string{discoveryv1.LabelServiceName: metricsServerName, discoveryv1.LabelManagedBy: "flowforge-local-cluster"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		// Never dialled (--enable-aggregator-routing=false), and not
		// loopback: a documentation address (RFC 5737).
		Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"192.0.2.12"}, Conditions: discoveryv1.EndpointConditions{Ready: &ready}}},
		Ports:     []discoveryv1.EndpointPort{{Name: &name, Port: &p, Protocol: &proto}},
	}
	if _, err := cs.DiscoveryV1().EndpointSlices(slice.Namespace).Create(ctx, slice, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("local cluster: metrics-server endpoints: %w", err)
	}
	dyn, err := dynamic.NewForConfig(c.RESTConfig)
	if err != nil {
		return fmt.Errorf("local cluster: %w", err)
	}
	svcRef := map[string]any{"name": metricsServerName, "namespace": metav1.NamespaceSystem, "port": int64(port)}
	api := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apiregistration.k8s.io/v1",
		"kind":       "APIService",
		"metadata":   map[string]any{"name": "v1beta1.metrics.k8s.io"},
		"spec": map[string]any{
			"group": "metrics.k8s.io", "version": "v1beta1",
			"groupPriorityMinimum": int64(100), "versionPriority": int64(100),
			"service": svcRef, "caBundle": caPEM,
		},
	}}
	if _, err := dyn.Resource(apiServiceGVR).Create(ctx, api, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("local cluster: metrics.k8s.io APIService: %w", err)
	}
	return nil
}

// WaitPodMetrics waits until metrics.k8s.io reports a pod with every
// container's CPU and memory above zero (CPU shows after two of
// metrics-server's scrapes of the pod).
func (c *Cluster) WaitPodMetrics(ctx context.Context, namespace, pod string, timeout time.Duration) error {
	cs, err := c.Clientset()
	if err != nil {
		return err
	}
	path := fmt.Sprintf("/apis/metrics.k8s.io/v1beta1/namespaces/%s/pods/%s", namespace, pod)
	var last error
	err = wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		var pm struct {
			Containers []struct {
				Usage map[string]string `json:"usage"`
			} `json:"containers"`
		}
		raw, err := cs.Discovery().RESTClient().Get().AbsPath(path).DoRaw(ctx)
		if err == nil {
			err = json.Unmarshal(raw, &pm)
		}
		if err != nil {
			last = err
			return false, nil
		}
		if len(pm.Containers) == 0 {
			last = errors.New("no containers reported")
			return false, nil
		}
		for _, ctr := range pm.Containers {
			if ctr.Usage["cpu"] == "" || ctr.Usage["cpu"] == "0" || ctr.Usage["memory"] == "" || ctr.Usage["memory"] == "0" {
				last = fmt.Errorf("usage %v", ctr.Usage)
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("local cluster: no metrics of pod %s/%s (see %s): %w", namespace, pod, c.LogPath(metricsServerName), errors.Join(err, last))
	}
	return nil
}

// kwokExtraConfig is what kwok's configuration gets beyond the stages.
func (c *Cluster) kwokExtraConfig() string {
	if !c.opts.ResourceMetrics {
		return ""
	}
	return kwokResourceMetricsConfig
}
