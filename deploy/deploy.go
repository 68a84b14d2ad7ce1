package deploy

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	nodev1 "k8s.io/api/node/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

var (
	//go:embed webhook-configurations.yaml
	webhookConfigurations []byte
	//go:embed cluster-objects.yaml
	clusterObjects []byte
	//go:embed namespace.yaml
	namespace []byte
	//go:embed rbac.yaml
	rbac []byte
)

// FlowForge's namespace and the service accounts rbac.yaml grants rights to.
const (
	Namespace                = "flowforge-system"
	WebhookServiceAccount    = "flowforge-webhook"
	ControllerServiceAccount = "flowforge-controller"
)

// ServiceAccountUser is the user name the API server gives a service
// account of Namespace, and the groups it belongs to.
func ServiceAccountUser(name string) (user string, groups []string) {
	return "system:serviceaccount:" + Namespace + ":" + name,
		[]string{"system:serviceaccounts", "system:serviceaccounts:" + Namespace, "system:authenticated"}
}

// ApplyRBAC creates or replaces FlowForge's namespace, its two service
// accounts and their roles and bindings, as deployed.
func ApplyRBAC(ctx context.Context, c client.Client) error {
	for _, manifest := range []struct {
		name string
		data []byte
	}{{"namespace.yaml", namespace}, {"rbac.yaml", rbac}} {
		objs, err := decodeAll(manifest.data)
		if err != nil {
			return err
		}
		for _, o := range objs {
			obj, ok := o.(client.Object)
			if !ok {
				return fmt.Errorf("deploy: unexpected %T in %s", o, manifest.name)
			}
			if err := createOrReplace(ctx, c, obj); err != nil {
				return err
			}
		}
	}
	return nil
}

// WebhookConfigurations returns the mutating and validating webhook
// configurations as deployed.
func WebhookConfigurations() (*admissionregistrationv1.MutatingWebhookConfiguration, *admissionregistrationv1.ValidatingWebhookConfiguration, error) {
	objs, err := decodeAll(webhookConfigurations)
	if err != nil {
		return nil, nil, err
	}
	var m *admissionregistrationv1.MutatingWebhookConfiguration
	var v *admissionregistrationv1.ValidatingWebhookConfiguration
	for _, o := range objs {
		switch t := o.(type) {
		case *admissionregistrationv1.MutatingWebhookConfiguration:
			m = t
		case *admissionregistrationv1.ValidatingWebhookConfiguration:
			v = t
		}
	}
	if m == nil || v == nil {
		return nil, nil, errors.New("deploy: webhook-configurations.yaml lacks a mutating or a validating configuration")
	}
	return m, v, nil
}

// ClusterObjects returns the RuntimeClass and PriorityClass hardened Jobs need.
func ClusterObjects() ([]client.Object, error) {
	objs, err := decodeAll(clusterObjects)
	if err != nil {
		return nil, err
	}
	out := make([]client.Object, 0, len(objs))
	for _, o := range objs {
		switch t := o.(type) {
		case *nodev1.RuntimeClass, *schedulingv1.PriorityClass:
			out = append(out, t.(client.Object))
		default:
			return nil, fmt.Errorf("deploy: unexpected %T in cluster-objects.yaml", o)
		}
	}
	return out, nil
}

// RegisterLocal creates or replaces the webhook configurations, pointing
// them at baseURL (for example https://127.0.0.1:9443) with caBundle, and
// creates the cluster objects. Everything else is as deployed.
func RegisterLocal(ctx context.Context, c client.Client, baseURL string, caBundle []byte) error {
	base, err := url.Parse(baseURL)
	if err != nil || base.Scheme != "https" {
		return fmt.Errorf("deploy: webhook URL %q must be https", baseURL)
	}
	m, v, err := WebhookConfigurations()
	if err != nil {
		return err
	}
	for i := range m.Webhooks {
		m.Webhooks[i].ClientConfig = localClientConfig(base, m.Webhooks[i].ClientConfig, caBundle)
	}
	for i := range v.Webhooks {
		v.Webhooks[i].ClientConfig = localClientConfig(base, v.Webhooks[i].ClientConfig, caBundle)
	}
	objs, err := ClusterObjects()
	if err != nil {
		return err
	}
	for _, o := range append(objs, m, v) {
		if err := createOrReplace(ctx, c, o); err != nil {
			return err
		}
	}
	return nil
}

func localClientConfig(base *url.URL, in admissionregistrationv1.WebhookClientConfig, caBundle []byte) admissionregistrationv1.WebhookClientConfig {
	path := ""
	if in.Service != nil && in.Service.Path != nil {
		path = *in.Service.Path
	}
	u := *base
	u.Path = strings.TrimRight(base.Path, "/") + path
	s := u.String()
	return admissionregistrationv1.WebhookClientConfig{URL: &s, CABundle: caBundle}
}

func createOrReplace(ctx context.Context, c client.Client, obj client.Object) error {
	existing := obj.DeepCopyObject().(client.Object)
	err := c.Get(ctx, client.ObjectKeyFromObject(obj), existing)
	switch {
	case err == nil:
		obj.SetResourceVersion(existing.GetResourceVersion())
		if err := c.Update(ctx, obj); err != nil {
			return fmt.Errorf("deploy: update %s %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)
		}
	case client.IgnoreNotFound(err) == nil:
		if err := c.Create(ctx, obj); err != nil {
			return fmt.Errorf("deploy: create %s %s: %w", obj.GetObjectKind().GroupVersionKind().Kind, obj.GetName(), err)
		}
	default:
		return fmt.Errorf("deploy: read %s: %w", obj.GetName(), err)
	}
	return nil
}

func decodeAll(data []byte) ([]runtime.Object, error) {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("deploy: scheme: %w", err)
	}
	decoder := serializer.NewCodecFactory(scheme).UniversalDeserializer()
	reader := utilyaml.NewYAMLReader(bufioReader(data))
	var out []runtime.Object
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("deploy: read manifest: %w", err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		obj, _, err := decoder.Decode(doc, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("deploy: decode manifest: %w", err)
		}
		out = append(out, obj)
	}
}

func bufioReader(data []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(data)) }
