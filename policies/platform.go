package policies

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"

	"sigs.k8s.io/yaml"
)

// PlatformFile is the optional file of a policy directory that adapts the
// policy data to a platform (overlays: GKE Sandbox, runsc, the
// Security Profiles Operator): a document shaped like data.yaml whose
// data.flowforge.config keys replace the shipped ones: each key's own
// keys are replaced, the others kept (see merge). Only PlatformKeys may be set. It is
// applied after the policy's own tests passed on the shipped data, so the
// tests keep pinning the defaults while an install serves its platform's
// values; a platform file that does not parse or sets another key refuses
// the policy like a failing test.
const PlatformFile = "platform.yaml"

// PlatformKeys are the data.flowforge.config keys a PlatformFile may set:
// what differs between clusters, not what FlowForge decides.
var PlatformKeys = []string{"appArmor", "runtimeClass", "scheduling", "seccomp"}

// ReadPlatform returns the flowforge.config of fsys's PlatformFile, or nil
// if there is none.
func ReadPlatform(fsys fs.FS) (map[string]any, error) {
	raw, err := fs.ReadFile(fsys, PlatformFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load policies: %s: %w", PlatformFile, err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("load policies: %s: %w", PlatformFile, err)
	}
	cfg, err := platformConfig(doc)
	if err != nil {
		return nil, fmt.Errorf("load policies: %s: %w", PlatformFile, err)
	}
	return cfg, nil
}

// ApplyPlatform sets the platform's keys in data.flowforge.config.
func ApplyPlatform(platform, data map[string]any) error {
	if len(platform) == 0 {
		return nil
	}
	base, ok := Lookup(data, "flowforge", "config").(map[string]any)
	if !ok {
		return fmt.Errorf("load policies: %s: the policy data has no flowforge.config to adapt", PlatformFile)
	}
	for k, v := range platform {
		base[k] = merge(base[k], v)
	}
	return nil
}

// platformConfig returns doc's flowforge.config, refusing any other key.
func platformConfig(doc map[string]any) (map[string]any, error) {
	if len(doc) == 0 {
		return nil, nil
	}
	ff, ok := doc["flowforge"].(map[string]any)
	if len(doc) != 1 || !ok {
		return nil, errors.New("must hold flowforge.config and nothing else")
	}
	cfg, ok := ff["config"].(map[string]any)
	if len(ff) != 1 || !ok {
		return nil, errors.New("must hold flowforge.config and nothing else")
	}
	allowed := map[string]bool{}
	for _, k := range PlatformKeys {
		allowed[k] = true
	}
	var bad []string
	for k := range cfg {
		if !allowed[k] {
			bad = append(bad, k)
		}
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		return nil, fmt.Errorf("sets %s; a platform may set only %s", strings.Join(bad, ", "), strings.Join(PlatformKeys, ", "))
	}
	return cfg, nil
}

// merge returns base with over's keys replaced (one level: a platform
// that sets scheduling.nodeSelector replaces the whole node selector and
// keeps scheduling.allowedSchedulers). Anything but two maps is replaced.
func merge(base, over any) any {
	bm, ok1 := base.(map[string]any)
	om, ok2 := over.(map[string]any)
	if !ok1 || !ok2 {
		return over
	}
	out := make(map[string]any, len(bm)+len(om))
	for k, v := range bm {
		out[k] = v
	}
	for k, v := range om {
		out[k] = v
	}
	return out
}

// SkipMountBookkeeping skips the bookkeeping of a mounted ConfigMap: the kubelet
// writes the files into a hidden ..<timestamp> directory and links them
// from the mount's top level through ..data, so only the links are read.
func SkipMountBookkeeping(_ string, info os.FileInfo, _ int) bool {
	return strings.HasPrefix(info.Name(), "..")
}
