package policies

import (
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/flowforge/flowforge/contract"
)

// The Job contract's Go constants and the policy data name the same
// labels and annotations: the webhook reads the data, the renderer, client
// and controller the constants.
func TestEmbeddedConfigMatchesTheJobContract(t *testing.T) {
	cfg, err := EmbeddedConfig()
	require.NoError(t, err)
	assert.Equal(t, contract.LabelApp, cfg.Selector.Label)
	assert.Equal(t, contract.AppName, cfg.Selector.Value)
	assert.Equal(t, contract.AnnotationProfile, cfg.Annotations.Profile)
	assert.Equal(t, contract.AnnotationTimeout, cfg.Annotations.Timeout)
	assert.Equal(t, contract.AnnotationPolicyRevision, cfg.Annotations.PolicyRevision)
	assert.Equal(t, contract.AnnotationRepository, cfg.Annotations.Repository)
	assert.Equal(t, contract.AnnotationTTLSecondsAfterFinished, cfg.Annotations.TTLSecondsAfterFinished)
	assert.ElementsMatch(t, []string{contract.LabelJobID, contract.LabelUserID}, cfg.RequiredLabels)
	assert.Contains(t, cfg.PropagatedLabels, contract.LabelApp)
	assert.Contains(t, cfg.Resources.ProfileNames(), cfg.Resources.DefaultProfile)
	assert.True(t, cfg.Export.Enabled)
	assert.Positive(t, cfg.Export.PendingTimeout())
}

func TestConfigValidateNamesEveryBadField(t *testing.T) {
	good := func() *Config {
		c, err := EmbeddedConfig()
		require.NoError(t, err)
		return c
	}
	neg, small := int64(-1), int64(10)
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   []string
	}{
		{"selector", func(c *Config) { c.Selector = Selector{Label: "bad label!"} }, []string{"selector.label", "selector.value: required"}},
		{"managed namespace label", func(c *Config) { c.ManagedNamespaceLabel.Key = "" }, []string{"managedNamespaceLabel.key: required"}},
		{"required labels", func(c *Config) { c.RequiredLabels = []string{"ok", "-bad"} }, []string{"requiredLabels[1]"}},
		{"selector not propagated", func(c *Config) { c.PropagatedLabels = []string{"job-id"} }, []string{"propagatedLabels: must contain the selector label"}},
		{"annotation", func(c *Config) { c.Annotations.Timeout = "" }, []string{"annotations.timeout: required"}},
		{"registries", func(c *Config) { c.Images.AllowedRepositories = nil }, []string{"images.allowedRepositories: at least one"}},
		{"registry host", func(c *Config) { c.Images.AllowedRepositories = []Repository{{Registry: "a/b"}} }, []string{"images.allowedRepositories[0].registry"}},
		{"pinning", func(c *Config) { c.Images.Pinning = "none" }, []string{"images.pinning"}},
		{"default profile", func(c *Config) { c.Resources.DefaultProfile = "xl" }, []string{`resources.defaultProfile: "xl"`}},
		{"no profiles", func(c *Config) { c.Resources.Profiles = nil }, []string{"resources.profiles: at least one"}},
		{"deadline bounds", func(c *Config) { c.Job.ActiveDeadlineSeconds.Max = &small }, []string{"job.activeDeadlineSeconds: default 3600 is not within [0, max 10]"}},
		{"ttl missing", func(c *Config) { c.Job.TTLSecondsAfterFinished.Default = nil }, []string{"job.ttlSecondsAfterFinished: default and max are required"}},
		{"ttl negative", func(c *Config) { c.Job.TTLSecondsAfterFinished.Default = &neg }, []string{"job.ttlSecondsAfterFinished: default -1"}},
		{"finalizers", func(c *Config) { c.Export.JobFinalizer = "" }, []string{"export.jobFinalizer: required"}},
		{"exported label", func(c *Config) { c.Export.ExportedLabel = "not a label" }, []string{"export.exportedLabel"}},
		{"pending timeout", func(c *Config) { c.Export.PendingTimeoutSeconds = -1 }, []string{"export.pendingTimeoutSeconds"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good()
			tc.change(c)
			err := c.Validate()
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
	require.NoError(t, good().Validate())
}

func TestConfigFromReportsUnreadableData(t *testing.T) {
	_, err := ConfigFrom(fstest.MapFS{"data.yaml": {Data: []byte("flowforge: [unclosed")}})
	require.ErrorContains(t, err, "data.yaml")
	_, err = ConfigFrom(fstest.MapFS{})
	require.ErrorContains(t, err, "policy data")
	_, err = ConfigFrom(fstest.MapFS{"data.yaml": {Data: []byte("flowforge:\n  config:\n    selector: [not, a, map]\n")}})
	require.ErrorContains(t, err, "flowforge.config")
}
