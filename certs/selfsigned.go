package certs

import (
	"fmt"
	"net"
	"time"
)

// ServingFiles is what WriteSelfSigned writes.
type ServingFiles struct {
	// CAPEM is the CA certificate, for a webhook configuration's caBundle.
	CAPEM []byte
	// CertPath and KeyPath are the serving pair.
	CertPath, KeyPath string
}

// WriteSelfSigned creates a new CA and a serving certificate for hosts (DNS
// names or IP addresses) and writes tls.crt, tls.key and ca.crt into dir.
// It is how local clusters and tests get webhook TLS without openssl.
func WriteSelfSigned(dir string, hosts []string, now time.Time, validity time.Duration) (*ServingFiles, error) {
	if len(hosts) == 0 {
		return nil, fmt.Errorf("certs: no hosts for the serving certificate")
	}
	ca, err := NewCA("flowforge-webhook-ca", now, validity)
	if err != nil {
		return nil, err
	}
	leaf := Leaf{CommonName: hosts[0], Server: true}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			leaf.IPAddresses = append(leaf.IPAddresses, ip)
		} else {
			leaf.DNSNames = append(leaf.DNSNames, h)
		}
	}
	kp, err := ca.Issue(leaf, now, validity)
	if err != nil {
		return nil, err
	}
	if err := kp.Write(dir, "tls.crt", "tls.key"); err != nil {
		return nil, err
	}
	if err := WriteFileAtomic(dir+"/ca.crt", ca.CertPEM, 0o644); err != nil {
		return nil, err
	}
	return &ServingFiles{CAPEM: ca.CertPEM, CertPath: dir + "/tls.crt", KeyPath: dir + "/tls.key"}, nil
}
