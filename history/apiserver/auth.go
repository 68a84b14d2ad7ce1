package apiserver

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/request/headerrequest"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/authorization/union"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/kubernetes"
)

// The ConfigMap in which kube-apiserver publishes its client CA and the
// front-proxy (requestheader) settings for aggregated API servers.
const (
	authConfigMapNamespace = "kube-system"
	authConfigMapName      = "extension-apiserver-authentication"
)

// cacheTTL is how long token reviews and access reviews are cached: short,
// so a removed RoleBinding stops reads within seconds.
const cacheTTL = 10 * time.Second

// requestHeader is the front-proxy configuration read from the
// extension-apiserver-authentication ConfigMap and kept up to date: the
// CA that signs the API server's proxy client certificate, the names it
// may have, and the header names.
type requestHeader struct {
	*dynamiccertificates.ConfigMapCAController
	*headerrequest.RequestHeaderAuthRequestController
}

var (
	_ dynamiccertificates.ControllerRunner           = (*requestHeader)(nil)
	_ dynamiccertificates.CAContentProvider          = (*requestHeader)(nil)
	_ headerrequest.RequestHeaderAuthRequestProvider = (*requestHeader)(nil)
)

func newRequestHeader(kube kubernetes.Interface) (*requestHeader, error) {
	ca, err := dynamiccertificates.NewDynamicCAFromConfigMapController("requestheader-client-ca", authConfigMapNamespace, authConfigMapName, "requestheader-client-ca-file", kube)
	if err != nil {
		return nil, fmt.Errorf("history API: requestheader client CA: %w", err)
	}
	return &requestHeader{
		ConfigMapCAController: ca,
		RequestHeaderAuthRequestController: headerrequest.NewRequestHeaderAuthRequestController(authConfigMapName, authConfigMapNamespace, kube,
			"requestheader-username-headers", "requestheader-uid-headers", "requestheader-group-headers",
			"requestheader-extra-headers-prefix", "requestheader-allowed-names"),
	}, nil
}

// RunOnce reads the ConfigMap once.
func (c *requestHeader) RunOnce(ctx context.Context) error {
	return utilerrors.NewAggregate([]error{c.ConfigMapCAController.RunOnce(ctx), c.RequestHeaderAuthRequestController.RunOnce(ctx)})
}

// Run keeps the configuration up to date until ctx ends.
func (c *requestHeader) Run(ctx context.Context, workers int) {
	go c.ConfigMapCAController.Run(ctx, workers)
	go c.RequestHeaderAuthRequestController.Run(ctx, workers)
	<-ctx.Done()
}

// delegateAuthentication sets up authentication as metrics-server's
// delegated authentication does, with the process's own client: front-proxy
// headers from a client certificate of the requestheader CA with an
// allowed name, client certificates of the cluster's client CA, and
// bearer tokens by TokenReview. Anonymous requests are refused.
func delegateAuthentication(ctx context.Context, kube kubernetes.Interface, info *genericapiserver.AuthenticationInfo, serving *genericapiserver.SecureServingInfo) error {
	rh, err := newRequestHeader(kube)
	if err != nil {
		return err
	}
	if err := rh.RunOnce(ctx); err != nil {
		return fmt.Errorf("history API: read ConfigMap %s/%s (is kube-apiserver run with --requestheader-client-ca-file, and may the controller read it?): %w",
			authConfigMapNamespace, authConfigMapName, err)
	}
	cm, err := kube.CoreV1().ConfigMaps(authConfigMapNamespace).Get(ctx, authConfigMapName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("history API: read ConfigMap %s/%s: %w", authConfigMapNamespace, authConfigMapName, err)
	}
	if cm.Data["requestheader-client-ca-file"] == "" || len(rh.AllowedClientNames()) == 0 {
		// Without them no request could be authenticated as the API server's
		// proxy: say why at start rather than answer every request 401.
		return fmt.Errorf("history API: ConfigMap %s/%s has no requestheader-client-ca-file or requestheader-allowed-names: run kube-apiserver with the aggregation layer's flags (--requestheader-client-ca-file, --requestheader-allowed-names, --proxy-client-cert-file)",
			authConfigMapNamespace, authConfigMapName)
	}
	clientCA, err := dynamiccertificates.NewDynamicCAFromConfigMapController("client-ca", authConfigMapNamespace, authConfigMapName, "client-ca-file", kube)
	if err != nil {
		return fmt.Errorf("history API: client CA: %w", err)
	}
	if err := clientCA.RunOnce(ctx); err != nil {
		return fmt.Errorf("history API: read the client CA from ConfigMap %s/%s: %w", authConfigMapNamespace, authConfigMapName, err)
	}
	rhConfig := &authenticatorfactory.RequestHeaderConfig{
		CAContentProvider:   rh,
		UsernameHeaders:     headerrequest.StringSliceProviderFunc(rh.UsernameHeaders),
		UIDHeaders:          headerrequest.StringSliceProviderFunc(rh.UIDHeaders),
		GroupHeaders:        headerrequest.StringSliceProviderFunc(rh.GroupHeaders),
		ExtraHeaderPrefixes: headerrequest.StringSliceProviderFunc(rh.ExtraHeaderPrefixes),
		AllowedClientNames:  headerrequest.StringSliceProviderFunc(rh.AllowedClientNames),
	}
	cfg := authenticatorfactory.DelegatingAuthenticatorConfig{
		Anonymous:                          &apiserver.AnonymousAuthConfig{Enabled: false},
		TokenAccessReviewClient:            kube.AuthenticationV1(),
		TokenAccessReviewTimeout:           10 * time.Second,
		WebhookRetryBackoff:                webhookBackoff(),
		CacheTTL:                           cacheTTL,
		ClientCertificateCAContentProvider: clientCA,
		RequestHeaderConfig:                rhConfig,
	}
	if err := info.ApplyClientCert(clientCA, serving); err != nil {
		return fmt.Errorf("history API: client CA: %w", err)
	}
	if err := info.ApplyClientCert(rh, serving); err != nil {
		return fmt.Errorf("history API: requestheader client CA: %w", err)
	}
	info.RequestHeaderConfig = rhConfig
	authn, _, err := cfg.New()
	if err != nil {
		return fmt.Errorf("history API: authenticator: %w", err)
	}
	info.Authenticator = authn
	return nil
}

// delegateAuthorization authorizes every request with a
// SubjectAccessReview, except those of system:masters (which the API
// server itself never denies).
func delegateAuthorization(kube kubernetes.Interface) (authorizer.Authorizer, error) {
	sar, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: kube.AuthorizationV1(),
		AllowCacheTTL:             cacheTTL,
		DenyCacheTTL:              cacheTTL,
		WebhookRetryBackoff:       webhookBackoff(),
	}.New()
	if err != nil {
		return nil, fmt.Errorf("history API: authorizer: %w", err)
	}
	return union.New(
		union.NamedAuthorizer{AuthorizerName: "kubernetes.io/always-allow-groups", Authorizer: authorizerfactory.NewPrivilegedGroups("system:masters")},
		union.NamedAuthorizer{AuthorizerName: "kubernetes.io/webhook", Authorizer: sar},
	)
}

// webhookBackoff retries TokenReviews and SubjectAccessReviews as
// k8s.io/apiserver's options do by default.
func webhookBackoff() *wait.Backoff {
	return &wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5}
}
