package server

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"

	"github.com/flowforge/flowforge/deploy"
	"github.com/flowforge/flowforge/validate"
)

// TestEveryDeployedWebhookPathIsServed checks that each path the webhook
// configurations in deploy/ send requests to has a handler.
func TestEveryDeployedWebhookPathIsServed(t *testing.T) {
	engine, err := loadEngine()
	require.NoError(t, err)
	handlers := Handlers(engine, func(context.Context, string) (map[string]string, error) { return nil, nil }, clock.RealClock{})
	m, v, err := deploy.WebhookConfigurations()
	require.NoError(t, err)
	paths := map[string]string{}
	for _, w := range m.Webhooks {
		paths[w.Name] = *w.ClientConfig.Service.Path
	}
	for _, w := range v.Webhooks {
		paths[w.Name] = *w.ClientConfig.Service.Path
	}
	for name, path := range paths {
		assert.Contains(t, handlers, path, "webhook %s", name)
	}
}

func TestWithPodsWiresTheConnectHandler(t *testing.T) {
	engine, err := loadEngine()
	require.NoError(t, err)
	handlers := Handlers(engine, func(context.Context, string) (map[string]string, error) { return nil, nil }, clock.RealClock{})
	h, ok := handlers[validate.ConnectPath].(*validate.ConnectHandler)
	require.True(t, ok)
	assert.Nil(t, h.Pods, "without a lookup the handler fails closed")
	WithPods(handlers, func(context.Context, string, string) (*metav1.ObjectMeta, error) {
		return &metav1.ObjectMeta{}, nil
	})
	require.NotNil(t, h.Pods)
	meta, err := h.Pods(context.Background(), "ns", "p")
	require.NoError(t, err)
	assert.NotNil(t, meta)
}
