package apiserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/kubernetes"
	restclient "k8s.io/client-go/rest"
	"k8s.io/component-base/compatibility"

	"github.com/flowforge/flowforge/history"
	historyv1alpha1 "github.com/flowforge/flowforge/history/apis/v1alpha1"
	"github.com/flowforge/flowforge/history/apiserver/openapi"
)

// Options configure the history API server.
type Options struct {
	// Store is the history it serves.
	Store history.Store
	// Kube reaches the Kubernetes API server: TokenReview,
	// SubjectAccessReview and the ConfigMap
	// kube-system/extension-apiserver-authentication. Nil (tests only)
	// serves without authentication or authorization.
	Kube kubernetes.Interface
	// Listener serves HTTPS (the caller binds it: the history Service's
	// port, or the clusterIP:port of a local cluster).
	Listener net.Listener
	// CertFile and KeyFile are the serving certificate and key; they are
	// reloaded when the files change (cert-manager rotates them).
	CertFile, KeyFile string
	// Log receives the server's own messages.
	Log logr.Logger
}

// Server is the history API server.
type Server struct {
	generic *genericapiserver.GenericAPIServer
}

// BinaryVersion is the Kubernetes version the server reports (its
// library's): the API server's discovery and OpenAPI handlers use it.
const BinaryVersion = "1.37.0"

// New builds the server; Run serves it.
func New(ctx context.Context, opts Options) (*Server, error) {
	if opts.Store == nil {
		return nil, errors.New("history API: no store")
	}
	if opts.Listener == nil {
		return nil, errors.New("history API: no listener")
	}
	scheme, err := NewScheme()
	if err != nil {
		return nil, err
	}
	codecs := codecsFor(scheme)
	cfg := genericapiserver.NewConfig(codecs)
	cfg.EffectiveVersion = compatibility.NewEffectiveVersionFromString(BinaryVersion, "", "")
	cfg.EnableMetrics = false // the controller's /metrics covers the process
	cfg.EnableProfiling = false
	cfg.EnableIndex = false
	namer := openapinamer.NewDefinitionNamer(scheme)
	cfg.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(openapi.GetOpenAPIDefinitions, namer)
	cfg.OpenAPIConfig.Info.Title = "FlowForge history"
	cfg.OpenAPIConfig.Info.Version = historyv1alpha1.SchemeGroupVersion.Version
	cfg.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(openapi.GetOpenAPIDefinitions, namer)
	cfg.OpenAPIV3Config.Info.Title = "FlowForge history"
	cfg.OpenAPIV3Config.Info.Version = historyv1alpha1.SchemeGroupVersion.Version

	var cert dynamiccertificates.CertKeyContentProvider
	if opts.CertFile != "" || opts.KeyFile != "" {
		if cert, err = dynamiccertificates.NewDynamicServingContentFromFiles("history-serving-cert", opts.CertFile, opts.KeyFile); err != nil {
			return nil, fmt.Errorf("history API: serving certificate: %w", err)
		}
	}
	cfg.SecureServing = &genericapiserver.SecureServingInfo{Listener: opts.Listener, Cert: cert, MinTLSVersion: tls.VersionTLS12}
	// No post-start hook calls back into this server; the generic server
	// only requires a loopback configuration to exist.
	cfg.LoopbackClientConfig = &restclient.Config{Host: "https://" + opts.Listener.Addr().String()}
	if opts.Kube != nil {
		if err := delegateAuthentication(ctx, opts.Kube, &cfg.Authentication, cfg.SecureServing); err != nil {
			return nil, err
		}
		if cfg.Authorization.Authorizer, err = delegateAuthorization(opts.Kube); err != nil {
			return nil, err
		}
	}

	generic, err := cfg.Complete(nil).New("flowforge-history", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, fmt.Errorf("history API: %w", err)
	}
	group := genericapiserver.NewDefaultAPIGroupInfo(historyv1alpha1.GroupName, scheme, runtime.NewParameterCodec(scheme), codecs)
	group.PrioritizedVersions = []schema.GroupVersion{historyv1alpha1.SchemeGroupVersion}
	group.VersionedResourcesStorageMap[historyv1alpha1.SchemeGroupVersion.Version] = map[string]rest.Storage{
		historyv1alpha1.Resource: newExecutionREST(opts.Store),
		historyv1alpha1.Resource + "/" + historyv1alpha1.LogSubresource: &logREST{store: opts.Store},
	}
	if err := generic.InstallAPIGroup(&group); err != nil {
		return nil, fmt.Errorf("history API: install %s: %w", historyv1alpha1.GroupName, err)
	}
	return &Server{generic: generic}, nil
}

// Run serves until ctx ends, then shuts down.
func (s *Server) Run(ctx context.Context) error {
	if err := s.generic.PrepareRun().RunWithContext(ctx); err != nil {
		return fmt.Errorf("history API: %w", err)
	}
	return nil
}

// Handler is the server's handler chain (authentication, authorization,
// the API), for tests that serve it themselves.
func (s *Server) Handler() http.Handler { return s.generic.Handler }
