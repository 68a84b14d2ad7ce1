package framework

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flowforge/flowforge/certs"
	"github.com/flowforge/flowforge/deploy"
	"github.com/flowforge/flowforge/history"
	historyv1alpha1 "github.com/flowforge/flowforge/history/apis/v1alpha1"
	"github.com/flowforge/flowforge/history/apiserver"
	"github.com/flowforge/flowforge/test/localcluster"
)

// HistoryAPI is where a local cluster's aggregated history API is served:
// the flowforge-history Service's fixed clusterIP in the cluster's
// loopback Service range, and its port, which the API server dials for
// the APIService's `service:` reference, as in a real cluster.
type HistoryAPI struct {
	// URL is https://<clusterIP>:<port>, the Service's address.
	URL       string
	ClusterIP string
	Port      int
	// CertDir holds tls.crt and tls.key (for the Service's names and
	// clusterIP) and ca.crt, the APIService's caBundle.
	CertDir string
	CAPEM   []byte
}

// historyCertValidity outlives any test or `make up` session.
const historyCertValidity = 30 * 24 * time.Hour

// PrepareHistoryAPI picks the history API's address in the cluster and
// creates its serving certificate, once per cluster (every controller of
// the cluster serves the same Service with the same certificate).
func PrepareHistoryAPI(c *localcluster.Cluster) (*HistoryAPI, error) {
	clusterIP, err := c.ClusterIP(localcluster.HistoryAPIServiceHost)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(c.Dir, "history-api")
	h := &HistoryAPI{ClusterIP: clusterIP, CertDir: dir}
	portFile := filepath.Join(dir, "port")
	if data, err := os.ReadFile(portFile); err == nil {
		if h.Port, err = strconv.Atoi(string(data)); err != nil {
			return nil, fmt.Errorf("history API port in %s: %w", portFile, err)
		}
		if h.CAPEM, err = os.ReadFile(filepath.Join(dir, "ca.crt")); err != nil {
			return nil, err
		}
	} else {
		if h.Port, err = localcluster.ServicePort(clusterIP, 443); err != nil {
			return nil, err
		}
		hosts := append(deploy.ServiceDNSNames(deploy.HistoryServiceName), clusterIP)
		files, err := certs.WriteSelfSigned(dir, hosts, time.Now(), historyCertValidity)
		if err != nil {
			return nil, err
		}
		h.CAPEM = files.CAPEM
		if err := os.WriteFile(portFile, []byte(strconv.Itoa(h.Port)), 0o644); err != nil {
			return nil, err
		}
	}
	h.URL = "https://" + net.JoinHostPort(clusterIP, strconv.Itoa(h.Port))
	return h, nil
}

// Listen listens on the history API's address with SO_REUSEPORT, so that
// several controllers of one cluster (replicas) serve it together.
func (h *HistoryAPI) Listen(ctx context.Context) (net.Listener, error) {
	lc := net.ListenConfig{Control: func(_, _ string, raw syscall.RawConn) error {
		var sockErr error
		if err := raw.Control(func(fd uintptr) {
			sockErr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return sockErr
	}}
	l, err := lc.Listen(ctx, "tcp", net.JoinHostPort(h.ClusterIP, strconv.Itoa(h.Port)))
	if err != nil {
		return nil, fmt.Errorf("history API: listen: %w", err)
	}
	return l, nil
}

// Register creates the flowforge-history Service and the APIService from
// deploy/ (deploy.RegisterHistoryLocal) pointed at h.
func (h *HistoryAPI) Register(ctx context.Context, c *localcluster.Cluster) error {
	cl, err := AdminClient(c)
	if err != nil {
		return err
	}
	port := int32(h.Port) //nolint:gosec // a port
	if h.Port == 443 {
		port = 0
	}
	if err := deploy.RegisterHistoryLocal(ctx, cl, h.ClusterIP, port, h.CAPEM); err != nil {
		return err
	}
	// The aggregator's availability check wants a ready endpoint behind the
	// Service's https port; with no pods (the controller runs in this
	// process) the EndpointSlice controller makes none, so the test makes
	// one, as the Service's pods would have. Its address is never dialled
	// (the API server dials the clusterIP, --enable-aggregator-routing=false)
	// and may not be loopback, so it is a documentation address (RFC 5737).
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Name: deploy.HistoryServiceName + "-local", Namespace: deploy.Namespace,
			Labels: map[string]string{discoveryv1.LabelServiceName: deploy.HistoryServiceName, discoveryv1.LabelManagedBy: "flowforge-test-framework"},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"192.0.2.11"}, Conditions: discoveryv1.EndpointConditions{Ready: new(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: new("https"), Port: new(int32(h.Port)), Protocol: new(corev1.ProtocolTCP)}}, //nolint:gosec // a port
	}
	existing := &discoveryv1.EndpointSlice{}
	err = cl.Get(ctx, client.ObjectKeyFromObject(slice), existing)
	switch {
	case err == nil:
		slice.ResourceVersion = existing.ResourceVersion
		err = cl.Update(ctx, slice)
	case apierrors.IsNotFound(err):
		err = cl.Create(ctx, slice)
	}
	if err != nil {
		return fmt.Errorf("history API endpoints: %w", err)
	}
	return nil
}

// WaitHistoryAPI waits until the API server serves history.flowforge.io
// (the APIService is available) to the cluster admin.
func WaitHistoryAPI(ctx context.Context, c *localcluster.Cluster) error {
	cs, err := kubernetes.NewForConfig(c.RESTConfig)
	if err != nil {
		return err
	}
	path := "/apis/" + historyv1alpha1.SchemeGroupVersion.String()
	var last error
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, DefaultTimeout, true, func(ctx context.Context) (bool, error) {
		last = cs.Discovery().RESTClient().Get().AbsPath(path).Do(ctx).Error()
		return last == nil, nil
	})
	if err != nil {
		return fmt.Errorf("the API server does not serve %s (%s): %w", path, apiServiceStatus(ctx, c), errors.Join(err, last))
	}
	return nil
}

// apiServiceStatus describes the history APIService's conditions.
func apiServiceStatus(ctx context.Context, c *localcluster.Cluster) string {
	cl, err := AdminClient(c)
	if err != nil {
		return err.Error()
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(certs.APIServiceGVK)
	if err := cl.Get(context.WithoutCancel(ctx), client.ObjectKey{Name: deploy.HistoryAPIServiceName}, u); err != nil {
		return err.Error()
	}
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	return fmt.Sprintf("APIService %s: %v", deploy.HistoryAPIServiceName, conds)
}

// ServeHistoryAPI serves the aggregated history API of store in the test
// process, as the controller does (its service account's rights,
// delegated authentication and authorization), registers it and waits
// until the API server serves it. For tests that run no controller; stop
// serving with the returned function.
func ServeHistoryAPI(ctx context.Context, c *localcluster.Cluster, store history.Store) (stop func(), err error) {
	h, err := PrepareHistoryAPI(c)
	if err != nil {
		return nil, err
	}
	cfg, err := ServiceAccountConfig(ctx, c, deploy.ControllerServiceAccount)
	if err != nil {
		return nil, err
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	l, err := h.Listen(ctx)
	if err != nil {
		return nil, err
	}
	srv, err := apiserver.New(ctx, apiserver.Options{
		Store: store, Kube: kube, Listener: l,
		CertFile: filepath.Join(h.CertDir, "tls.crt"), KeyFile: filepath.Join(h.CertDir, "tls.key"),
		Log: logr.Discard(),
	})
	if err != nil {
		_ = l.Close()
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan error, 1)
	go func() { done <- srv.Run(runCtx) }()
	stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
		}
	}
	if err := h.Register(ctx, c); err != nil {
		stop()
		return nil, err
	}
	if err := WaitHistoryAPI(ctx, c); err != nil {
		stop()
		return nil, err
	}
	return stop, nil
}
