package webhook

import (
	"bytes"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "sigs.k8s.io/json"
)

// DecodeStrict decodes the raw object of an admission request into into (a
// pointer to the typed object of the request's kind) and checks that the
// object is what the request says it is. The policies read the raw JSON and
// the handlers the typed object, so the two must agree exactly:
//   - apiVersion and kind must be present and equal gvk: a Pod sent as
//     kind Job, or a Job whose object claims another kind, is malformed;
//   - keys are matched case-sensitively, and an unknown or a duplicated
//     field is refused: encoding/json would map "Spec" onto spec and keep
//     the last of two "spec" keys while the policy sees something else.
//
// The API server sends objects it has itself decoded and re-encoded, so a
// genuine request always passes; what fails is a crafted one, or a webhook
// older than the cluster's API (upgrade FlowForge with Kubernetes). The
// error says what is wrong; callers name the object.
func DecodeStrict(raw []byte, gvk schema.GroupVersionKind, into any) error {
	if len(bytes.TrimSpace(raw)) == 0 {
		return errors.New("it is empty")
	}
	strict, err := kjson.UnmarshalStrict(raw, into, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	// A typed object read its own apiVersion and kind (case-sensitively, the
	// last of duplicated keys, as a separate pass would): the document is
	// scanned once. When the decode failed, a separate pass still names a
	// wrong kind first, the clearer message.
	var meta *metav1.TypeMeta
	if typed, ok := into.(interface{ GetObjectKind() schema.ObjectKind }); ok {
		meta, _ = typed.GetObjectKind().(*metav1.TypeMeta)
	}
	if err != nil || meta == nil {
		if kindErr := checkKind(raw, gvk); kindErr != nil {
			return kindErr
		}
		if err != nil {
			return err
		}
	} else if meta.APIVersion != gvk.GroupVersion().String() || meta.Kind != gvk.Kind {
		return kindError(meta.APIVersion, meta.Kind, gvk)
	}
	return errors.Join(strict...)
}

// checkKind reads apiVersion and kind alone and checks them against gvk.
func checkKind(raw []byte, gvk schema.GroupVersionKind) error {
	var head struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := kjson.UnmarshalCaseSensitivePreserveInts(raw, &head); err != nil {
		return err
	}
	if head.APIVersion != gvk.GroupVersion().String() || head.Kind != gvk.Kind {
		return kindError(head.APIVersion, head.Kind, gvk)
	}
	return nil
}

func kindError(apiVersion, kind string, gvk schema.GroupVersionKind) error {
	return fmt.Errorf("its apiVersion %q and kind %q are not the request's %s %s", apiVersion, kind, gvk.GroupVersion().String(), gvk.Kind)
}
