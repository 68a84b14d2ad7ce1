package localcluster

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// Every local cluster gets its own loopback Service range,
// 127.99.X.0/24, passed to kube-apiserver as --service-cluster-ip-range.
// Services created with a fixed clusterIP in that range (see
// Cluster.ClusterIP) are reachable from the API server on loopback: with no
// kube-proxy, kube-apiserver dials a webhook's or an APIService's
// `service:` reference at clusterIP:port, so a program that listens on that
// address and port in this machine is served exactly as a Service in a real
// cluster (Linux routes all of 127.0.0.0/8 to the loopback interface).
//
// X is chosen free per cluster: the cluster holds an exclusive flock on
// ServiceRangeLockDir/flowforge-svc-cidr-X.lock for its lifetime. The kernel
// releases the lock when the holding process dies, however it dies, so a
// crashed test never leaks its range. Parallel clusters (integration
// packages run concurrently, each with its own cluster) therefore never
// share an address, which matters because replicas bind their address with
// SO_REUSEPORT: two clusters on one address would share connections.
const (
	// ServiceRangeLockDir holds the lock files. It is fixed, not
	// $TMPDIR, so that every process on the machine sees the same locks.
	ServiceRangeLockDir = "/tmp"
	// serviceRangePrefix is the /16 the per-cluster /24s are taken from.
	serviceRangePrefix = "127.99."
)

// Fixed host numbers in the cluster's Service range, for Cluster.ClusterIP.
// kube-apiserver gives the `kubernetes` Service the first address (.1);
// FlowForge's Services get fixed ones from .10 up so that tests and
// `make up` know them before creating the Service.
const (
	// WebhookServiceHost is flowforge-webhook's clusterIP: 127.99.X.10.
	WebhookServiceHost = 10
	// HistoryAPIServiceHost is the aggregated history API's clusterIP:
	// 127.99.X.11.
	HistoryAPIServiceHost = 11
)

// serviceRange is a reserved 127.99.X.0/24.
type serviceRange struct {
	octet int
	lock  *os.File
}

// reserveServiceRange takes the first free 127.99.X.0/24, starting from a
// random X so that clusters starting together rarely contend.
func reserveServiceRange() (*serviceRange, error) {
	start := rand.IntN(256) //nolint:gosec // spreading start points, not security
	var errs []error
	for i := range 256 {
		octet := (start + i) % 256
		f, err := lockRange(octet)
		if err != nil {
			if !errors.Is(err, syscall.EWOULDBLOCK) {
				errs = append(errs, err)
			}
			continue
		}
		return &serviceRange{octet: octet, lock: f}, nil
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("local cluster: no free service range in %s0.0/16: %w", serviceRangePrefix, errors.Join(errs...))
	}
	return nil, fmt.Errorf("local cluster: no free service range in %s0.0/16: 256 clusters are running", serviceRangePrefix)
}

// lockRange takes the lock of 127.99.octet.0/24 without waiting. The file
// is opened close-on-exec, so the components never inherit the lock.
func lockRange(octet int) (*os.File, error) {
	path := filepath.Join(ServiceRangeLockDir, fmt.Sprintf("flowforge-svc-cidr-%d.lock", octet))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, err
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// For a person looking: who holds it.
	_ = f.Truncate(0)
	_, _ = fmt.Fprintf(f, "%d\n", os.Getpid())
	return f, nil
}

// cidr is the range in CIDR notation, 127.99.X.0/24.
func (r *serviceRange) cidr() string {
	return fmt.Sprintf("%s%d.0/24", serviceRangePrefix, r.octet)
}

// ip is the address of host (1-254) in the range.
func (r *serviceRange) ip(host int) string {
	return fmt.Sprintf("%s%d.%d", serviceRangePrefix, r.octet, host)
}

// release drops the lock (closing the file releases the flock).
func (r *serviceRange) release() {
	if r != nil && r.lock != nil {
		_ = r.lock.Close()
		r.lock = nil
	}
}

// ClusterIP returns the address of host in the cluster's Service range, for
// a Service's spec.clusterIP: ClusterIP(WebhookServiceHost) is
// 127.99.X.10. Use the *ServiceHost constants so that FlowForge's Services
// never collide; host must be in 2-254 (.1 is the `kubernetes` Service).
// A program that serves the Service listens on this address at the
// Service's port, since the API server dials clusterIP:port.
func (c *Cluster) ClusterIP(host int) (string, error) {
	if host < 2 || host > 254 {
		return "", fmt.Errorf("local cluster: clusterIP host %d outside 2-254", host)
	}
	if c.svc == nil {
		return "", errors.New("local cluster: no service range (the cluster did not start)")
	}
	return c.svc.ip(host), nil
}

// ServicePort returns want if this process may listen on ip:want (port
// 443 needs root or CAP_NET_BIND_SERVICE), else a free port of ip. A
// Service that serves the returned port is dialled there by the API server.
// An address already in use is an error: the cluster's range is its own.
func ServicePort(ip string, want int) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(want)))
	if err == nil {
		return want, l.Close()
	}
	if !errors.Is(err, syscall.EACCES) {
		return 0, fmt.Errorf("local cluster: service address %s:%d: %w", ip, want, err)
	}
	l, err = net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, fmt.Errorf("local cluster: service address %s: %w", ip, err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	return port, l.Close()
}
