package certs

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// Certificate modes of a server.
const (
	// ModeRotate: the server manages its own CA and serving certificate in
	// a Secret (Rotator) and reloads them from it (Keeper).
	ModeRotate = "rotate"
	// ModeFiles: the serving certificate comes from files that something
	// else (cert-manager) writes and rotates; they are reloaded on change.
	ModeFiles = "files"
)

// Defaults of Config.
const (
	DefaultSecret      = "flowforge-system/flowforge-webhook-tls"
	DefaultHosts       = "flowforge-webhook.flowforge-system.svc,flowforge-webhook.flowforge-system.svc.cluster.local"
	DefaultValidity    = 90 * 24 * time.Hour
	DefaultResync      = 10 * time.Second
	DefaultMaxBundle   = 4
	maxPropagation     = 30 * time.Second
	DefaultMutating    = "flowforge-mutating"
	DefaultValidating  = "flowforge-validating"
	defaultLeaseSuffix = "-rotator"
)

// Config selects how a server gets its serving certificate and, in
// ModeRotate, how the certificate is rotated.
type Config struct {
	// Mode is ModeRotate (default) or ModeFiles.
	Mode string
	// Secret is namespace/name of the Secret holding the CA and the serving
	// certificate: the source of truth in ModeRotate.
	Secret string
	// Hosts are the serving certificate's DNS names and IP addresses.
	Hosts []string
	// Validity is the serving certificate's lifetime; CAValidity the CA's
	// (0: twice Validity).
	Validity, CAValidity time.Duration
	// Lookahead renews the serving certificate when less than this remains
	// (0: a third of Validity). The CA is renewed when less than a third
	// of CAValidity remains.
	Lookahead time.Duration
	// Propagation is how long a new CA is in every caBundle before it signs
	// the served certificate (0: a tenth of Validity, at most 30s).
	Propagation time.Duration
	// Resync is how often the leader checks the Secret and the caBundles
	// even without a change (0: DefaultResync).
	Resync time.Duration
	// MutatingWebhooks, ValidatingWebhooks and APIServices name the objects
	// whose caBundle the leader keeps equal to the Secret's ca.crt. Missing
	// objects are skipped until they appear.
	MutatingWebhooks, ValidatingWebhooks, APIServices []string
	// LeaderElection: only the holder of the Lease <secret name>-rotator
	// renews (default true; false for a single replica).
	LeaderElection bool
}

// DefaultConfig is the webhook's certificate configuration by default.
func DefaultConfig() Config {
	return Config{
		Mode:               ModeRotate,
		Secret:             DefaultSecret,
		Hosts:              splitList(DefaultHosts),
		Validity:           DefaultValidity,
		MutatingWebhooks:   []string{DefaultMutating},
		ValidatingWebhooks: []string{DefaultValidating},
		LeaderElection:     true,
	}
}

// BindFlags registers the --cert-* and --ca-* flags on fs, with c's values
// as defaults.
func (c *Config) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Mode, "cert-mode", c.Mode, "serving certificate: \"rotate\" (a CA and a certificate the server manages and rotates itself in --cert-secret, injecting the CA into the webhook configurations) or \"files\" (--cert-dir, written and rotated by e.g. cert-manager)")
	fs.StringVar(&c.Secret, "cert-secret", c.Secret, "namespace/name of the Secret holding the CA and the serving certificate (rotate mode)")
	fs.Func("cert-hosts", "comma-separated DNS names and IP addresses of the serving certificate (rotate mode; default "+strings.Join(c.Hosts, ",")+")", func(s string) error {
		c.Hosts = splitList(s)
		return nil
	})
	fs.DurationVar(&c.Validity, "cert-validity", c.Validity, "lifetime of the serving certificate (rotate mode)")
	fs.DurationVar(&c.CAValidity, "ca-validity", c.CAValidity, "lifetime of the CA (rotate mode; 0: twice --cert-validity)")
	fs.DurationVar(&c.Lookahead, "cert-lookahead", c.Lookahead, "renew the serving certificate when less than this remains (rotate mode; 0: a third of --cert-validity)")
	fs.DurationVar(&c.Propagation, "ca-propagation", c.Propagation, "how long a new CA is in every caBundle before it signs the served certificate (rotate mode; 0: a tenth of --cert-validity, at most 30s)")
	fs.Func("ca-inject-mutating", "comma-separated MutatingWebhookConfigurations whose caBundle follows the Secret (rotate mode; default "+strings.Join(c.MutatingWebhooks, ",")+")", func(s string) error {
		c.MutatingWebhooks = splitList(s)
		return nil
	})
	fs.Func("ca-inject-validating", "comma-separated ValidatingWebhookConfigurations whose caBundle follows the Secret (rotate mode; default "+strings.Join(c.ValidatingWebhooks, ",")+")", func(s string) error {
		c.ValidatingWebhooks = splitList(s)
		return nil
	})
	fs.Func("ca-inject-apiservices", "comma-separated APIServices served with this certificate whose caBundle follows the Secret (rotate mode; default none)", func(s string) error {
		c.APIServices = splitList(s)
		return nil
	})
	fs.BoolVar(&c.LeaderElection, "cert-leader-election", c.LeaderElection, "only the replica holding the Lease <secret>-rotator renews the certificates (rotate mode)")
}

// Validate checks c and fills in the derived defaults.
func (c *Config) Validate() error {
	switch c.Mode {
	case ModeFiles:
		return nil
	case ModeRotate:
	default:
		return fmt.Errorf("certs: --cert-mode must be %q or %q, got %q", ModeRotate, ModeFiles, c.Mode)
	}
	if _, err := c.SecretKey(); err != nil {
		return err
	}
	if len(c.Hosts) == 0 {
		return errors.New("certs: no hosts for the serving certificate (--cert-hosts)")
	}
	if c.Validity <= 0 {
		return fmt.Errorf("certs: --cert-validity must be positive, got %s", c.Validity)
	}
	if c.CAValidity == 0 {
		c.CAValidity = 2 * c.Validity
	}
	if c.CAValidity < c.Validity {
		return fmt.Errorf("certs: --ca-validity %s is shorter than --cert-validity %s", c.CAValidity, c.Validity)
	}
	if c.Lookahead == 0 {
		c.Lookahead = c.Validity / 3
	}
	if c.Lookahead < 0 || c.Lookahead >= c.Validity {
		return fmt.Errorf("certs: --cert-lookahead %s must be positive and shorter than --cert-validity %s", c.Lookahead, c.Validity)
	}
	if c.Propagation == 0 {
		c.Propagation = min(c.Validity/10, maxPropagation)
	}
	if c.Propagation < 0 || c.Propagation >= c.Lookahead {
		return fmt.Errorf("certs: --ca-propagation %s must be positive and shorter than --cert-lookahead %s", c.Propagation, c.Lookahead)
	}
	if c.Resync <= 0 {
		c.Resync = DefaultResync
	}
	return nil
}

// SecretKey parses Secret.
func (c *Config) SecretKey() (types.NamespacedName, error) {
	ns, name, ok := strings.Cut(c.Secret, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return types.NamespacedName{}, fmt.Errorf("certs: --cert-secret must be namespace/name, got %q", c.Secret)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}

// leaf is the serving certificate Config describes.
func (c *Config) leaf() Leaf {
	l := Leaf{CommonName: c.Hosts[0], Server: true}
	for _, h := range c.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			l.IPAddresses = append(l.IPAddresses, ip)
		} else {
			l.DNSNames = append(l.DNSNames, h)
		}
	}
	return l
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
