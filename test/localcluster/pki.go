package localcluster

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/flowforge/flowforge/certs"
)

// certValidity is long enough for any test run or `make up` session.
const certValidity = 30 * 24 * time.Hour

// pki holds the file paths of the cluster's TLS material.
type pki struct {
	dir           string
	caCert        string
	caKey         string
	caPEM         []byte
	apiserverCert string
	apiserverKey  string
	kubeletClient string
	kubeletKey    string
	kwokCert      string
	kwokKey       string
	saKey         string
	saPub         string
	// The front proxy (aggregation layer): its own CA, which aggregated
	// API servers trust for the X-Remote-* headers, and the client
	// certificate kube-apiserver proxies with (CN front-proxy-client).
	frontProxyCA         string
	frontProxyClientCert string
	frontProxyClientKey  string
	adminPair            *certs.KeyPair
	kcmPair              *certs.KeyPair
	schedulerPair        *certs.KeyPair
	kwokClientPair       *certs.KeyPair
}

// newPKI creates a cluster CA and every certificate the components need.
func newPKI(dir string, now time.Time) (*pki, error) {
	dir = filepath.Join(dir, "pki")
	ca, err := certs.NewCA("flowforge-local-cluster-ca", now, certValidity)
	if err != nil {
		return nil, err
	}
	p := &pki{dir: dir, caCert: filepath.Join(dir, "ca.crt"), caKey: filepath.Join(dir, "ca.key"), caPEM: ca.CertPEM}
	if err := ca.Write(dir, "ca.crt", "ca.key"); err != nil {
		return nil, err
	}
	loopback := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.1")}
	issue := func(leaf certs.Leaf, name string) (*certs.KeyPair, string, string, error) {
		kp, err := ca.Issue(leaf, now, certValidity)
		if err != nil {
			return nil, "", "", err
		}
		if name == "" {
			return kp, "", "", nil
		}
		certPath, keyPath := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		return kp, certPath, keyPath, kp.Write(dir, name+".crt", name+".key")
	}
	steps := []struct {
		leaf      certs.Leaf
		file      string
		pair      **certs.KeyPair
		cert, key *string
	}{
		{leaf: certs.Leaf{CommonName: "kube-apiserver", Server: true, IPAddresses: loopback, DNSNames: []string{
			"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local",
		}}, file: "apiserver", cert: &p.apiserverCert, key: &p.apiserverKey},
		{leaf: certs.Leaf{CommonName: "kube-apiserver-kubelet-client", Organizations: []string{"system:masters"}, Client: true},
			file: "apiserver-kubelet-client", cert: &p.kubeletClient, key: &p.kubeletKey},
		{leaf: certs.Leaf{CommonName: "kwok-kubelet", Server: true, IPAddresses: loopback, DNSNames: []string{"localhost"}},
			file: "kwok-serving", cert: &p.kwokCert, key: &p.kwokKey},
		{leaf: certs.Leaf{CommonName: "flowforge-admin", Organizations: []string{"system:masters"}, Client: true}, pair: &p.adminPair},
		{leaf: certs.Leaf{CommonName: "system:kube-controller-manager", Client: true}, pair: &p.kcmPair},
		{leaf: certs.Leaf{CommonName: "system:kube-scheduler", Client: true}, pair: &p.schedulerPair},
		{leaf: certs.Leaf{CommonName: "kwok-controller", Organizations: []string{"system:masters"}, Client: true}, pair: &p.kwokClientPair},
	}
	for _, s := range steps {
		kp, certPath, keyPath, err := issue(s.leaf, s.file)
		if err != nil {
			return nil, err
		}
		if s.pair != nil {
			*s.pair = kp
		}
		if s.cert != nil {
			*s.cert, *s.key = certPath, keyPath
		}
	}
	if err := p.frontProxy(dir, now); err != nil {
		return nil, err
	}
	saPriv, saPub, err := certs.NewSigningKey()
	if err != nil {
		return nil, err
	}
	p.saKey, p.saPub = filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if err := certs.WriteFileAtomic(p.saKey, saPriv, 0o600); err != nil {
		return nil, err
	}
	if err := certs.WriteFileAtomic(p.saPub, saPub, 0o644); err != nil {
		return nil, err
	}
	return p, nil
}

// FrontProxyClientName is the CN of kube-apiserver's proxy client
// certificate, the one name --requestheader-allowed-names allows.
const FrontProxyClientName = "front-proxy-client"

// frontProxy creates the front-proxy CA, separate from the cluster CA (a
// client certificate of the cluster CA must not be able to assert any
// identity in headers), and kube-apiserver's proxy client certificate.
func (p *pki) frontProxy(dir string, now time.Time) error {
	ca, err := certs.NewCA("flowforge-local-front-proxy-ca", now, certValidity)
	if err != nil {
		return err
	}
	if err := ca.Write(dir, "front-proxy-ca.crt", "front-proxy-ca.key"); err != nil {
		return err
	}
	kp, err := ca.Issue(certs.Leaf{CommonName: FrontProxyClientName, Client: true}, now, certValidity)
	if err != nil {
		return err
	}
	if err := kp.Write(dir, "front-proxy-client.crt", "front-proxy-client.key"); err != nil {
		return err
	}
	p.frontProxyCA = filepath.Join(dir, "front-proxy-ca.crt")
	p.frontProxyClientCert = filepath.Join(dir, "front-proxy-client.crt")
	p.frontProxyClientKey = filepath.Join(dir, "front-proxy-client.key")
	return nil
}

// kubeconfig renders a kubeconfig for server that authenticates with kp.
func kubeconfig(server string, caPEM []byte, user string, kp *certs.KeyPair) ([]byte, error) {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["flowforge-local"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: caPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: kp.CertPEM, ClientKeyData: kp.KeyPEM}
	cfg.Contexts["flowforge-local"] = &clientcmdapi.Context{Cluster: "flowforge-local", AuthInfo: user, Namespace: "default"}
	cfg.CurrentContext = "flowforge-local"
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, fmt.Errorf("render kubeconfig for %s: %w", user, err)
	}
	return data, nil
}

// writeKubeconfig renders a kubeconfig and writes it to dir/name.
func writeKubeconfig(dir, name, server string, caPEM []byte, user string, kp *certs.KeyPair) (string, []byte, error) {
	data, err := kubeconfig(server, caPEM, user, kp)
	if err != nil {
		return "", nil, err
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return "", nil, fmt.Errorf("write %s: %w", path, err)
	}
	return path, data, nil
}
