package chaos

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/flowforge/flowforge/test/localcluster"
)

// binDir holds the control plane's binaries and FlowForge's, built for
// this run: the fault run starts, kills and restarts them as processes.
var binDir string

func TestMain(m *testing.M) {
	// The stack's helpers use controller-runtime's clients; their logs are
	// not this test's.
	ctrllog.SetLogger(logr.Discard())
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "flowforge-chaos-bin-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir) //nolint:errcheck // a temporary directory
	if err := prepareBinaries(dir); err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: the fault run needs its binaries: %v\n", err)
		return 1
	}
	binDir = dir
	return m.Run()
}

// prepareBinaries links the pinned control plane into dir and builds
// FlowForge's webhook and controller there from this tree (a stale
// bin/flowforge-webhook would test old code).
func prepareBinaries(dir string) error {
	tools, err := localcluster.DefaultBinDir()
	if err != nil {
		return err
	}
	for _, name := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"} {
		src := filepath.Join(tools, name)
		if _, err := os.Stat(src); err != nil {
			return fmt.Errorf("%s: %w (run make tools-test)", src, err)
		}
		if err := os.Symlink(src, filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	root, err := localcluster.ModuleRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./cmd/flowforge-webhook", "./cmd/flowforge-controller")
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	return nil
}
