package localcluster

import (
	"context"
	_ "embed"
	"fmt"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// logsCRD is kwok's Logs CRD (sigs.k8s.io/kwok v0.8.0, kustomize/crd/bases).
//
//go:embed kwok/kwok.x-k8s.io_logs.yaml
var logsCRD []byte

var (
	crdGVR  = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	logsGVR = schema.GroupVersionResource{Group: "kwok.x-k8s.io", Version: "v1alpha1", Resource: "logs"}
)

// installLogsCRD installs kwok's Logs CRD and waits until it is served, so
// that kwok can watch per-pod log configuration.
func installLogsCRD(ctx context.Context, cfg *rest.Config) error {
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	obj := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(logsCRD, &obj.Object); err != nil {
		return fmt.Errorf("parse kwok Logs CRD: %w", err)
	}
	if _, err := dyn.Resource(crdGVR).Create(ctx, obj, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create kwok Logs CRD: %w", err)
	}
	return wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := dyn.Resource(logsGVR).Namespace("default").List(ctx, metav1.ListOptions{Limit: 1})
		return err == nil, nil
	})
}

// WorkerNodeNames returns the names of the tainted worker nodes.
func (c *Cluster) WorkerNodeNames() []string {
	names := make([]string, c.opts.WorkerNodes)
	for i := range names {
		names[i] = fmt.Sprintf("kwok-worker-%d", i)
	}
	return names
}

// createNodes registers the worker pool and the general node with the API
// server; kwok then plays their kubelets.
func (c *Cluster) createNodes(ctx context.Context, cs kubernetes.Interface) error {
	nodes := make([]*corev1.Node, 0, c.opts.WorkerNodes+1)
	for _, name := range c.WorkerNodeNames() {
		nodes = append(nodes, &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        name,
				Annotations: map[string]string{KwokNodeAnnotation: "fake"},
				Labels: map[string]string{
					"kubernetes.io/hostname": name,
					"kubernetes.io/os":       "linux",
					"kubernetes.io/arch":     "amd64",
					"type":                   "kwok",
					WorkerLabelKey:           WorkerLabelValue,
				},
			},
			Spec: corev1.NodeSpec{Taints: []corev1.Taint{{Key: WorkerTaintKey, Value: WorkerLabelValue, Effect: corev1.TaintEffectNoSchedule}}},
		})
	}
	nodes = append(nodes, &corev1.Node{ObjectMeta: metav1.ObjectMeta{
		Name:        GeneralNodeName,
		Annotations: map[string]string{KwokNodeAnnotation: "fake"},
		Labels: map[string]string{
			"kubernetes.io/hostname": GeneralNodeName,
			"kubernetes.io/os":       "linux",
			"kubernetes.io/arch":     "amd64",
			"type":                   "kwok",
		},
	}})
	for _, n := range nodes {
		if c.opts.ResourceMetrics {
			maps.Copy(n.Annotations, nodeMetricsAnnotations(n.Name))
		}
		if _, err := cs.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("local cluster: create node %s: %w", n.Name, err)
		}
	}
	return nil
}

func (c *Cluster) waitNodesReady(ctx context.Context, cs kubernetes.Interface) error {
	want := c.opts.WorkerNodes + 1
	return c.procs["kwok"].waitFor(ctx, "playing Ready nodes", func(ctx context.Context) error {
		list, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return err
		}
		ready := 0
		for _, n := range list.Items {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		if ready < want {
			return fmt.Errorf("%d of %d nodes Ready", ready, want)
		}
		return nil
	})
}

// waitDefaultServiceAccount waits until the controller manager has created
// the default namespace's service account: proof that its controllers run,
// and a precondition for creating pods there.
func (c *Cluster) waitDefaultServiceAccount(ctx context.Context, cs kubernetes.Interface) error {
	if err := WaitForServiceAccount(ctx, cs, "default"); err != nil {
		return c.procs["kube-controller-manager"].failure("no default service account: %v", err)
	}
	return nil
}

// WaitForServiceAccount waits for the "default" service account of a
// namespace, without which the API server refuses pods there.
func WaitForServiceAccount(ctx context.Context, cs kubernetes.Interface, namespace string) error {
	return wait.PollUntilContextCancel(ctx, 50*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(namespace).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
}

// CreateNamespace creates a namespace with labels and waits until pods can
// be created in it.
func CreateNamespace(ctx context.Context, cs kubernetes.Interface, name string, labels map[string]string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
	if _, err := cs.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	if err := WaitForServiceAccount(ctx, cs, name); err != nil {
		return fmt.Errorf("namespace %s: no default service account: %w", name, err)
	}
	return nil
}
