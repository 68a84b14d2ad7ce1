package validate

import (
	"context"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/flowforge/flowforge/mutate"
)

// Review is the whole admission of a Job CREATE as the API server runs it:
// the mutating handler, its patch applied, then the validating handler on
// the hardened Job as user. `flowforge policy apply` and the tests share
// it, so an offline verdict is the webhook's.
//
// err is non-nil when the mutation refused the Job or its patch did not
// apply; verdict is then empty. Otherwise verdict.Allowed says whether the
// validation admitted the hardened Job.
func Review(ctx context.Context, mutator admission.Handler, validator admission.Handler, namespace string, job []byte, user authenticationv1.UserInfo) (hardened []byte, mutation, verdict admission.Response, err error) {
	hardened, mutation, err = mutate.Review(ctx, mutator, namespace, job)
	if err != nil {
		return nil, mutation, admission.Response{}, err
	}
	verdict = validator.Handle(ctx, admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "offline-review", Kind: metav1.GroupVersionKind{Group: "batch", Version: "v1", Kind: "Job"},
		Resource:  metav1.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"},
		Namespace: namespace, Operation: admissionv1.Create, Object: runtime.RawExtension{Raw: hardened},
		UserInfo: user,
	}})
	return hardened, mutation, verdict, nil
}
