package certs

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"sort"
	"time"
)

// Keys of the Secret, as cert-manager names them (kubernetes.io/tls).
const (
	// SecretCert and SecretKey are the serving pair.
	SecretCert = "tls.crt"
	SecretKey  = "tls.key"
	// SecretCA is the bundle of trusted CAs, the signing CA first: what
	// the caBundles hold.
	SecretCA = "ca.crt"
	// SecretCAKey is the signing CA's key (rotate mode only).
	SecretCAKey = "ca.key"
	// RotateAnnotation on the Secret, with any value, makes the leader
	// rotate the CA and then the serving certificate, as at expiry.
	RotateAnnotation = "flowforge.io/rotate"
)

// material is what a Secret holds, parsed.
type material struct {
	signing *CA
	// bundle holds every trusted CA certificate, the signing one included.
	bundle  []*x509.Certificate
	serving *x509.Certificate
	pair    []byte // serving cert PEM
	key     []byte
}

// parseMaterial reads what it can of data; a part that does not parse is
// left empty and will be replaced.
func parseMaterial(data map[string][]byte) *material {
	m := &material{}
	for _, c := range parseBundle(data[SecretCA]) {
		if c.IsCA {
			m.bundle = append(m.bundle, c)
		}
	}
	for _, c := range m.bundle {
		if ca, err := LoadCA(encodeCert(c.Raw), data[SecretCAKey]); err == nil && keyMatches(ca) {
			m.signing = ca
			break
		}
	}
	if pair, err := tls.X509KeyPair(data[SecretCert], data[SecretKey]); err == nil {
		if leaf, err := x509.ParseCertificate(pair.Certificate[0]); err == nil {
			m.serving, m.pair, m.key = leaf, data[SecretCert], data[SecretKey]
		}
	}
	return m
}

func keyMatches(ca *CA) bool {
	pub, ok := ca.cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	return ok && pub.Equal(ca.key.Public())
}

func parseBundle(data []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return out
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if c, err := x509.ParseCertificate(block.Bytes); err == nil {
			out = append(out, c)
		}
	}
}

// Plan is the leader's decision for one Secret at one time.
type Plan struct {
	// Data is the Secret's new content, or nil when it stays as it is.
	Data map[string][]byte
	// Reasons say what changed, for the log.
	Reasons []string
	// Wake is when the Secret needs another look at the latest.
	Wake time.Time
	// DropRotate: the RotateAnnotation was honoured and is removed.
	DropRotate bool
}

// plan decides the Secret's next content at now. data is the Secret's
// current content (nil if it does not exist), forced whether the rotate
// annotation is set, and trustedSince when every caBundle was last seen to
// hold the signing CA of data (zero if not yet): a serving certificate from
// a new CA is issued only a Propagation after that, and meanwhile the old
// serving certificate, still trusted, is served.
func (c *Config) plan(data map[string][]byte, forced bool, trustedSince, now time.Time) (*Plan, error) {
	m := parseMaterial(data)
	p := &Plan{}
	changed := false

	// Trust: drop expired CAs.
	var bundle []*x509.Certificate
	for _, ca := range m.bundle {
		if now.Before(ca.NotAfter) {
			bundle = append(bundle, ca)
		}
	}
	if len(bundle) != len(m.bundle) {
		p.Reasons = append(p.Reasons, "expired CA dropped")
		changed = true
	}
	signing := m.signing
	if signing != nil && !now.Before(signing.cert.NotAfter) {
		signing = nil
	}

	// The CA: new when missing, due, or forced. The old one stays trusted.
	caReason := ""
	switch {
	case signing == nil:
		caReason = "no valid CA"
	case forced:
		caReason = "rotation forced"
	case !now.Before(signing.cert.NotAfter.Add(-c.CAValidity / 3)):
		caReason = "CA due for renewal"
	}
	p.DropRotate = forced
	caKey := data[SecretCAKey]
	newCA := caReason != ""
	if newCA {
		ca, err := NewCA(caName(now), now, c.CAValidity)
		if err != nil {
			return nil, err
		}
		signing, caKey, changed = ca, ca.KeyPEM, true
		bundle = append([]*x509.Certificate{ca.cert}, bundle...)
		p.Reasons = append(p.Reasons, caReason)
	}

	// The serving certificate.
	certPEM, keyPEM := m.pair, m.key
	servingOK := m.serving != nil && now.Before(m.serving.NotAfter) && c.covers(m.serving) && signedByAny(m.serving, bundle)
	servingReason, waiting := "", false
	switch {
	case !servingOK:
		// Nothing valid to protect: issue at once.
		servingReason = "no valid serving certificate"
	case m.serving.CheckSignatureFrom(signing.cert) != nil:
		// A newer CA: issue from it once every caBundle has trusted it for
		// a Propagation; until then the old certificate, still trusted,
		// is served.
		waiting = true
		switch {
		case newCA || trustedSince.IsZero():
		case now.Before(trustedSince.Add(c.Propagation)):
			p.Wake = trustedSince.Add(c.Propagation)
		default:
			servingReason = "serving certificate moves to the new CA"
		}
	case !now.Before(m.serving.NotAfter.Add(-c.Lookahead)):
		servingReason = "serving certificate due for renewal"
	}
	if servingReason != "" {
		kp, err := signing.Issue(c.leaf(), now, c.Validity)
		if err != nil {
			return nil, err
		}
		serving, err := ParseCertificate(kp.CertPEM)
		if err != nil {
			return nil, err
		}
		certPEM, keyPEM, m.serving, changed = kp.CertPEM, kp.KeyPEM, serving, true
		p.Reasons = append(p.Reasons, servingReason)
	}

	bundle = capBundle(dedupe(bundle), signing.cert, DefaultMaxBundle)
	bundlePEM := encodeBundle(bundle)
	if changed || !bytes.Equal(bundlePEM, data[SecretCA]) {
		p.Data = map[string][]byte{SecretCert: certPEM, SecretKey: keyPEM, SecretCA: bundlePEM, SecretCAKey: caKey}
	}
	// Wake for the next renewal or expiry.
	wakes := []time.Time{signing.cert.NotAfter.Add(-c.CAValidity / 3), p.Wake}
	if servingReason != "" || !waiting {
		// (While it waits for a CA's propagation, the serving certificate
		// may be due already: the propagation sets the time.)
		wakes = append(wakes, m.serving.NotAfter.Add(-c.Lookahead))
	}
	for _, ca := range bundle {
		wakes = append(wakes, ca.NotAfter)
	}
	p.Wake = time.Time{}
	for _, w := range wakes {
		if !w.IsZero() && (p.Wake.IsZero() || w.Before(p.Wake)) {
			p.Wake = w
		}
	}
	return p, nil
}

// covers reports whether cert names every host of c.
func (c *Config) covers(cert *x509.Certificate) bool {
	for _, h := range c.Hosts {
		if cert.VerifyHostname(h) != nil {
			return false
		}
	}
	return true
}

func dedupe(in []*x509.Certificate) []*x509.Certificate {
	var out []*x509.Certificate
	for _, c := range in {
		dup := false
		for _, o := range out {
			if c.Equal(o) {
				dup = true
				break
			}
		}
		if !dup {
			out = append(out, c)
		}
	}
	return out
}

// capBundle puts signing first and keeps at most limit CAs, the newest.
func capBundle(in []*x509.Certificate, signing *x509.Certificate, limit int) []*x509.Certificate {
	out := []*x509.Certificate{signing}
	var rest []*x509.Certificate
	for _, c := range in {
		if !c.Equal(signing) {
			rest = append(rest, c)
		}
	}
	sort.SliceStable(rest, func(i, j int) bool { return rest[i].NotBefore.After(rest[j].NotBefore) })
	out = append(out, rest...)
	if len(out) > limit {
		out = out[:limit]
	}
	return out
}

func encodeBundle(cs []*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range cs {
		b.Write(encodeCert(c.Raw))
	}
	return b.Bytes()
}

// signedByAny reports whether cert was signed by one of cas.
func signedByAny(cert *x509.Certificate, cas []*x509.Certificate) bool {
	for _, ca := range cas {
		if cert.CheckSignatureFrom(ca) == nil {
			return true
		}
	}
	return false
}

// caName names a new CA by its creation time and a random suffix: every
// CA's subject differs, so that a verifier never confuses two of them.
func caName(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("flowforge-ca-%s-%x", now.UTC().Format("20060102T150405Z"), b)
}
