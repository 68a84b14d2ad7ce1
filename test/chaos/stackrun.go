package chaos

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/flowforge/flowforge/test/localcluster"
	"github.com/flowforge/flowforge/test/localup"
)

// StackOptions configure RunOnNewStack.
type StackOptions struct {
	// StateDir receives the stack's state and logs; BinDir holds the
	// control plane's and FlowForge's binaries (test/localup).
	StateDir, BinDir string
	// PolicySource is the policies/ directory copied into
	// StateDir/policies, which the stack serves and the policy push edits.
	PolicySource string
	// Log receives the stack's progress lines.
	Log io.Writer
}

// RunOnNewStack starts a local stack (test/localup) with two webhook
// replicas and a controller serving a copy of the policies, runs the
// fault run on it, and stops it.
func RunOnNewStack(ctx context.Context, sopts StackOptions, opts Options) (*Report, error) {
	policyDir := filepath.Join(sopts.StateDir, "policies")
	if err := copyTree(sopts.PolicySource, policyDir); err != nil {
		return nil, fmt.Errorf("copy the policies: %w", err)
	}
	var report *Report
	err := localup.Run(ctx, localup.Options{
		StateDir:  sopts.StateDir,
		BinDir:    sopts.BinDir,
		PolicyDir: policyDir,
		Ready: func(ctx context.Context, c *localcluster.Cluster, ep *localup.Endpoints) error {
			stack, err := NewStack(c, ep, policyDir)
			if err != nil {
				return err
			}
			report, err = Run(ctx, stack, opts)
			return err
		},
	}, sopts.Log)
	return report, err
}

// NewStack wraps a running local stack.
func NewStack(c *localcluster.Cluster, ep *localup.Endpoints, policyDir string) (*Stack, error) {
	cfg := rest.CopyConfig(c.RESTConfig)
	cfg.QPS, cfg.Burst = 1000, 2000
	// The policy's warnings (an image pinned by tag) on every create.
	cfg.WarningHandler = rest.NoWarnings{}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	admin, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	return &Stack{Cluster: c, Endpoints: ep, PolicyDir: policyDir, Clientset: cs, Admin: admin, HTTP: &http.Client{Timeout: 10 * time.Second}}, nil
}

// copyTree copies the regular files of src into dst, leaving out Go files
// (policies/ holds the engine's Go code beside the Rego).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if filepath.Ext(path) == ".go" || !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}
