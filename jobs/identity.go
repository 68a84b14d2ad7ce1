package jobs

import (
	"context"
	"errors"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WhoAmI returns the username the API server authenticates this client as,
// from a SelfSubjectReview (what `kubectl auth whoami` shows). It is what
// a cancel request must record: the webhook refuses any other name unless
// the client is a trusted submitter.
func (c *Client) WhoAmI(ctx context.Context) (string, error) {
	var review *authenticationv1.SelfSubjectReview
	err := c.call(ctx, "review who this client is", func(ctx context.Context) error {
		var err error
		review, err = c.cs.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		return err
	})
	if err != nil {
		return "", err
	}
	if review.Status.UserInfo.Username == "" {
		return "", errors.New("the API server did not say who this client is (SelfSubjectReview without a username)")
	}
	return review.Status.UserInfo.Username, nil
}
