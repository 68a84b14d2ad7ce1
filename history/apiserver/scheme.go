package apiserver

import (
	"fmt"
	"net/url"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/conversion"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	historyv1alpha1 "github.com/flowforge/flowforge/history/apis/v1alpha1"
)

// NewScheme returns the scheme of the history API: its types, the
// unversioned meta types and the query parameter conversion of
// executions/log.
func NewScheme() (*runtime.Scheme, error) {
	scheme := runtime.NewScheme()
	if err := historyv1alpha1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("history API scheme: %w", err)
	}
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	unversioned := schema.GroupVersion{Group: "", Version: "v1"}
	scheme.AddUnversionedTypes(unversioned,
		&metav1.Status{}, &metav1.APIVersions{}, &metav1.APIGroupList{}, &metav1.APIGroup{}, &metav1.APIResourceList{},
	)
	if err := scheme.AddConversionFunc((*url.Values)(nil), (*historyv1alpha1.ExecutionLogOptions)(nil), func(a, b any, _ conversion.Scope) error {
		return logOptionsFromQuery(*a.(*url.Values), b.(*historyv1alpha1.ExecutionLogOptions))
	}); err != nil {
		return nil, fmt.Errorf("history API scheme: %w", err)
	}
	if err := scheme.AddFieldLabelConversionFunc(historyv1alpha1.SchemeGroupVersion.WithKind(historyv1alpha1.Kind), func(label, value string) (string, string, error) {
		switch label {
		case "metadata.name", "metadata.namespace", historyv1alpha1.FieldUser, historyv1alpha1.FieldPhase:
			return label, value, nil
		}
		return "", "", fmt.Errorf("field label %q not supported for executions: use metadata.name, metadata.namespace, %s or %s",
			label, historyv1alpha1.FieldUser, historyv1alpha1.FieldPhase)
	}); err != nil {
		return nil, fmt.Errorf("history API scheme: %w", err)
	}
	return scheme, nil
}

// codecsFor returns the serializers of scheme.
func codecsFor(scheme *runtime.Scheme) serializer.CodecFactory {
	return serializer.NewCodecFactory(scheme)
}

// logOptionsFromQuery reads ?attempt=N&container=C.
func logOptionsFromQuery(q url.Values, into *historyv1alpha1.ExecutionLogOptions) error {
	*into = historyv1alpha1.ExecutionLogOptions{TypeMeta: into.TypeMeta}
	if s := q.Get("attempt"); s != "" {
		n, err := strconv.ParseInt(s, 10, 32)
		if err != nil || n < 0 {
			return fmt.Errorf("attempt %q: want a positive number", s)
		}
		into.Attempt = int32(n)
	}
	into.Container = q.Get("container")
	return nil
}
