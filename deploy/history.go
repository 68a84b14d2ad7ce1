package deploy

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

var (
	//go:embed history.yaml
	historyManifest []byte
	//go:embed history-rbac.yaml
	historyRBAC []byte
)

// The aggregated history API as deploy/history.yaml registers it.
const (
	// HistoryServiceName is the Service the APIService's `service:`
	// reference names.
	HistoryServiceName = "flowforge-history"
	// HistoryAPIServiceName is the APIService of
	// history.flowforge.io/v1alpha1.
	HistoryAPIServiceName = "v1alpha1.history.flowforge.io"
)

// HistoryObjects returns the APIService (unstructured: client-go has no
// type for it) and the Service of the history API, as deployed.
func HistoryObjects() (*unstructured.Unstructured, *corev1.Service, error) {
	reader := utilyaml.NewYAMLReader(bufioReader(historyManifest))
	var apiService *unstructured.Unstructured
	var svc *corev1.Service
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("deploy: read history.yaml: %w", err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		u := &unstructured.Unstructured{}
		// apimachinery's Unmarshal keeps integers int64, as the API server's
		// JSON decoding does.
		if err := utilyaml.Unmarshal(doc, &u.Object); err != nil {
			return nil, nil, fmt.Errorf("deploy: decode history.yaml: %w", err)
		}
		switch u.GetKind() {
		case "APIService":
			apiService = u
		case "Service":
			svc = &corev1.Service{}
			if err := yaml.Unmarshal(doc, svc); err != nil {
				return nil, nil, fmt.Errorf("deploy: decode the history Service: %w", err)
			}
		}
	}
	if apiService == nil || svc == nil || svc.Name != HistoryServiceName || apiService.GetName() != HistoryAPIServiceName {
		return nil, nil, fmt.Errorf("deploy: history.yaml lacks the APIService %s or the Service %s", HistoryAPIServiceName, HistoryServiceName)
	}
	return apiService, svc, nil
}

// RegisterHistoryLocal registers the aggregated history API in a local
// cluster as deploy/ does in a real one: the Service flowforge-history
// with spec.clusterIP set to clusterIP (an address of the local cluster's
// loopback Service range, where the controller's history API listens) and
// the APIService with its `service:` reference and caBundle (the CA of
// the history API's serving certificate; cert-manager injects it in a
// real cluster). port replaces the Service's port (443) in the Service and
// the reference alike when not 0. It also applies deploy/history-rbac.yaml
// (ApplyRBAC does too).
func RegisterHistoryLocal(ctx context.Context, c client.Client, clusterIP string, port int32, caBundle []byte) error {
	if net.ParseIP(clusterIP) == nil {
		return fmt.Errorf("deploy: clusterIP %q is not an IP address", clusterIP)
	}
	if port < 0 || port > 65535 {
		return fmt.Errorf("deploy: port %d is out of range", port)
	}
	if len(caBundle) == 0 {
		return errors.New("deploy: the history APIService needs a caBundle")
	}
	apiService, svc, err := HistoryObjects()
	if err != nil {
		return err
	}
	svc.Spec.ClusterIP, svc.Spec.ClusterIPs = clusterIP, []string{clusterIP}
	if port != 0 {
		for i := range svc.Spec.Ports {
			svc.Spec.Ports[i].Port = port
		}
		if err := unstructured.SetNestedField(apiService.Object, int64(port), "spec", "service", "port"); err != nil {
			return fmt.Errorf("deploy: set the APIService's port: %w", err)
		}
	}
	// cert-manager's annotation means nothing here: the CA is set.
	apiService.SetAnnotations(nil)
	if err := unstructured.SetNestedField(apiService.Object, caBundleString(caBundle), "spec", "caBundle"); err != nil {
		return fmt.Errorf("deploy: set the APIService's caBundle: %w", err)
	}
	rbacObjs, err := decodeAll(historyRBAC)
	if err != nil {
		return err
	}
	objs := make([]client.Object, 0, len(rbacObjs)+2)
	for _, o := range rbacObjs {
		obj, ok := o.(client.Object)
		if !ok {
			return fmt.Errorf("deploy: unexpected %T in history-rbac.yaml", o)
		}
		objs = append(objs, obj)
	}
	for _, o := range append(objs, svc, apiService) {
		if err := createOrReplace(ctx, c, o); err != nil {
			return err
		}
	}
	return nil
}

// caBundleString is caBundle as the APIService's JSON has it (base64).
func caBundleString(caBundle []byte) string {
	return base64.StdEncoding.EncodeToString(caBundle)
}
