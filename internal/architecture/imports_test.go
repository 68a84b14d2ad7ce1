package architecture

import (
	"bufio"
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const module = "github.com/flowforge/flowforge"

// imports lists each FlowForge package's FlowForge imports (non-test).
func imports(t *testing.T, args ...string) map[string][]string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}"}, args...)...)
	cmd.Dir = "../.."
	out, err := cmd.Output()
	require.NoError(t, err, "go list")
	graph := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		pkg := strings.TrimPrefix(strings.TrimPrefix(fields[0], module), "/")
		for _, imp := range fields[1:] {
			if rest, ok := strings.CutPrefix(imp, module+"/"); ok {
				graph[pkg] = append(graph[pkg], rest)
			}
		}
		if _, ok := graph[pkg]; !ok {
			graph[pkg] = nil
		}
	}
	return graph
}

func under(pkg string, roots ...string) bool {
	for _, r := range roots {
		if pkg == r || strings.HasPrefix(pkg, r+"/") {
			return true
		}
	}
	return false
}

func TestImportsRunOneWay(t *testing.T) {
	graph := imports(t, "./...")
	// Layers, bottom first. A package may import its own layer's
	// packages, or lower layers, never a higher one.
	layers := [][]string{
		{"contract"},
		{"podlog", "history/apis", "certs", "internal/metrics"},
		{"history", "policies", "templates"},
		{"jobs", "webhook", "history/store"},
		{"mutate", "validate", "history/apiserver", "deploy", "internal/images"},
		{"controller", "webhook/server", "internal/cli"},
		{"cmd"},
	}
	layerOf := func(pkg string) int {
		best, bestLen := -1, -1
		for i, l := range layers {
			for _, root := range l {
				if under(pkg, root) && len(root) > bestLen {
					best, bestLen = i, len(root)
				}
			}
		}
		return best
	}
	for pkg, deps := range graph {
		if under(pkg, "test", "hack", "tools", "internal/architecture") {
			continue
		}
		from := layerOf(pkg)
		if from < 0 {
			t.Errorf("package %s is in no layer: place it in docs/architecture.md and this test", pkg)
			continue
		}
		for _, dep := range deps {
			assert.Falsef(t, under(dep, "test"), "%s imports test support %s", pkg, dep)
			if to := layerOf(dep); to > from {
				t.Errorf("%s (layer %d) imports %s (layer %d): imports must run downwards", pkg, from, dep, to)
			}
		}
	}
	assert.Empty(t, graph["contract"], "the Job contract imports nothing of FlowForge")
	assert.Empty(t, graph["podlog"], "podlog imports nothing of FlowForge")
}

func TestCLILinksNoDatabaseDriver(t *testing.T) {
	cmd := exec.Command("go", "list", "-deps", "./cmd/flowforge")
	cmd.Dir = "../.."
	out, err := cmd.Output()
	require.NoError(t, err)
	for _, dep := range strings.Fields(string(out)) {
		for _, driver := range []string{"modernc.org/sqlite", "github.com/jackc/pgx", "github.com/lib/pq", "github.com/mattn/go-sqlite3"} {
			assert.Falsef(t, strings.HasPrefix(dep, driver), "the CLI links %s", dep)
		}
		assert.Falsef(t, strings.HasPrefix(dep, module+"/history/store"), "the CLI links the history store")
	}
}

// TestOnlyTheWebhookAndTheCLILinkOPA: the controller reads the policy's
// settings (policies.ConfigSource) and never evaluates Rego, so it must not
// link the engine or OPA; they add about 13 MB to what its binary maps.
func TestOnlyTheWebhookAndTheCLILinkOPA(t *testing.T) {
	for cmd, wantOPA := range map[string]bool{"flowforge-controller": false, "flowforge-webhook": true, "flowforge": true} {
		c := exec.Command("go", "list", "-deps", "./cmd/"+cmd)
		c.Dir = "../.."
		out, err := c.Output()
		require.NoError(t, err)
		linked := false
		for _, dep := range strings.Fields(string(out)) {
			if strings.HasPrefix(dep, "github.com/open-policy-agent/opa") || dep == module+"/policies/engine" {
				linked = true
			}
		}
		assert.Equalf(t, wantOPA, linked, "%s links the policy engine and OPA", cmd)
	}
}
