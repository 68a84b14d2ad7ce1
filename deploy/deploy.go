package deploy

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
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
	//go:embed webhook.yaml
	webhookManifest []byte
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
	}{{"namespace.yaml", namespace}, {"rbac.yaml", rbac}, {"history-rbac.yaml", historyRBAC}} {
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

// WebhookServiceName is the webhook's Service (deploy/webhook.yaml), which
// every webhook configuration's `service:` reference names.
const WebhookServiceName = "flowforge-webhook"

// ServiceDNSNames are the names the API server may verify a Service's
// serving certificate against (it dials `service:` references with the
// server name <name>.<namespace>.svc).
func ServiceDNSNames(name string) []string {
	return []string{name + "." + Namespace + ".svc", name + "." + Namespace + ".svc.cluster.local"}
}

// WebhookService returns the webhook's Service as deployed.
func WebhookService() (*corev1.Service, error) {
	objs, err := decodeKnown(webhookManifest)
	if err != nil {
		return nil, err
	}
	for _, o := range objs {
		if svc, ok := o.(*corev1.Service); ok && svc.Name == WebhookServiceName {
			return svc, nil
		}
	}
	return nil, fmt.Errorf("deploy: webhook.yaml has no Service %s", WebhookServiceName)
}

// SetCABundle sets caBundle on every webhook of m and v: the CA the API
// server trusts when it calls them. It is the one place the webhook
// configurations get their CA.
func SetCABundle(m *admissionregistrationv1.MutatingWebhookConfiguration, v *admissionregistrationv1.ValidatingWebhookConfiguration, caBundle []byte) {
	for i := range m.Webhooks {
		m.Webhooks[i].ClientConfig.CABundle = caBundle
	}
	for i := range v.Webhooks {
		v.Webhooks[i].ClientConfig.CABundle = caBundle
	}
}

// RegisterLocal registers FlowForge's webhooks in a local cluster as
// deploy/ does in a real one: it creates or replaces the webhook Service
// with spec.clusterIP set to clusterIP (an address of the local cluster's
// loopback Service range, where the replicas listen), the webhook
// configurations with their `service:` references and caBundle (SetCABundle),
// and the cluster objects. The API server dials clusterIP at the
// Service's https port. port is that port: 0 keeps the deployed one (443);
// another value (a process that may not bind 443) changes the Service's
// port and every reference to it alike.
func RegisterLocal(ctx context.Context, c client.Client, clusterIP string, port int32, caBundle []byte) error {
	if net.ParseIP(clusterIP) == nil {
		return fmt.Errorf("deploy: clusterIP %q is not an IP address", clusterIP)
	}
	if port < 0 || port > 65535 {
		return fmt.Errorf("deploy: port %d is out of range", port)
	}
	svc, err := WebhookService()
	if err != nil {
		return err
	}
	svc.Spec.ClusterIP, svc.Spec.ClusterIPs = clusterIP, []string{clusterIP}
	deployedPort := int32(0)
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Name == "https" {
			deployedPort = svc.Spec.Ports[i].Port
			if port != 0 {
				svc.Spec.Ports[i].Port = port
			}
		}
	}
	if deployedPort == 0 {
		return fmt.Errorf("deploy: Service %s has no https port", WebhookServiceName)
	}
	m, v, err := WebhookConfigurations()
	if err != nil {
		return err
	}
	SetCABundle(m, v, caBundle)
	refs := make([]*admissionregistrationv1.ServiceReference, 0, len(m.Webhooks)+len(v.Webhooks))
	for i := range m.Webhooks {
		refs = append(refs, m.Webhooks[i].ClientConfig.Service)
	}
	for i := range v.Webhooks {
		refs = append(refs, v.Webhooks[i].ClientConfig.Service)
	}
	for _, ref := range refs {
		if ref == nil || ref.Name != WebhookServiceName || ref.Namespace != Namespace {
			return fmt.Errorf("deploy: a webhook does not reference the Service %s/%s", Namespace, WebhookServiceName)
		}
		if port != 0 {
			ref.Port = &port
		}
	}
	objs, err := ClusterObjects()
	if err != nil {
		return err
	}
	for _, o := range append(objs, svc, m, v) {
		if err := createOrReplace(ctx, c, o); err != nil {
			return err
		}
	}
	return nil
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
	return decode(data, false)
}

func decode(data []byte, skipUnknown bool) ([]runtime.Object, error) {
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
		if skipUnknown && runtime.IsNotRegisteredError(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("deploy: decode manifest: %w", err)
		}
		out = append(out, obj)
	}
}

// decodeKnown decodes the documents of data whose kinds client-go knows
// and skips the others (a monitoring CRD next to a Deployment).
func decodeKnown(data []byte) ([]runtime.Object, error) {
	return decode(data, true)
}

func bufioReader(data []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(data)) }
