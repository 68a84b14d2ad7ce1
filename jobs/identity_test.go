package jobs

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	authenticationv1 "k8s.io/api/authentication/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

func TestWhoAmI(t *testing.T) {
	review := func(username string, err error) k8stesting.ReactionFunc {
		return func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, &authenticationv1.SelfSubjectReview{Status: authenticationv1.SelfSubjectReviewStatus{
				UserInfo: authenticationv1.UserInfo{Username: username, Groups: []string{"system:authenticated"}},
			}}, err
		}
	}
	tests := []struct {
		name    string
		react   k8stesting.ReactionFunc
		want    string
		wantErr string
	}{
		{name: "the authenticated username", react: review("system:serviceaccount:ci:runner", nil), want: "system:serviceaccount:ci:runner"},
		{name: "no username", react: review("", nil), wantErr: "did not say who this client is"},
		{name: "refused", react: review("", apierrors.NewForbidden(authenticationv1.Resource("selfsubjectreviews"), "", errors.New("no"))), wantErr: "forbidden"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset()
			cs.PrependReactor("create", "selfsubjectreviews", tc.react)
			got, err := newTestClient(t, cs).WhoAmI(context.Background())
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}
