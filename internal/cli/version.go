package cli

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"

	"github.com/flowforge/flowforge/contract"
)

// cliVersion is set at link time (-ldflags "-X
// github.com/flowforge/flowforge/internal/cli.cliVersion=v1.2.3"); when
// empty, the version comes from the build information.
var cliVersion string

// ClientVersion is the CLI's own version.
type ClientVersion struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	GoVersion string `json:"goVersion"`
}

// PolicyVersion is the admission policy revision the webhook stamped on
// the newest agent Job in the namespace (flowforge.io/policy-revision).
type PolicyVersion struct {
	Revision string `json:"revision"`
	// Job is the namespace/name of the Job it was read from.
	Job string `json:"job"`
}

// VersionInfo is what `flowforge version -o json` prints.
type VersionInfo struct {
	Client ClientVersion `json:"client"`
	// Policy is absent when no agent Job carries a revision yet.
	Policy *PolicyVersion `json:"policy,omitempty"`
	// Server is the API server's version (absent with --client).
	Server *version.Info `json:"server,omitempty"`
}

// clientVersion reads the CLI's version from the linker flag, else the
// build information (module version, VCS revision).
func clientVersion(info *debug.BuildInfo, ok bool) ClientVersion {
	v := ClientVersion{Version: cliVersion, GoVersion: runtime.Version()}
	if !ok || info == nil {
		if v.Version == "" {
			v.Version = "unknown"
		}
		return v
	}
	if v.Version == "" {
		v.Version = info.Main.Version
	}
	if v.Version == "" {
		v.Version = "(devel)"
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

func newVersionCommand(o *options) *cobra.Command {
	var clientOnly bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the CLI's version, the webhook's policy revision and the API server's version",
		Long: `version prints the CLI's version; then, from the cluster, the admission
policy revision the webhook stamped on the newest agent Job of the
namespace (annotation flowforge.io/policy-revision) and the API server's
version. --client prints only the CLI's version, without a cluster.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := VersionInfo{Client: clientVersion(debug.ReadBuildInfo())}
			var clusterErr error
			if !clientOnly {
				clusterErr = o.clusterVersion(cmd.Context(), &info)
			}
			if done, err := printStructured(o.streams.Out, o.output, info); done {
				if err != nil {
					return err
				}
				return clusterErr
			}
			out := o.streams.Out
			commit := info.Client.Commit
			if commit != "" && info.Client.Modified {
				commit += " (modified)"
			}
			fmt.Fprintf(out, "Client Version: %s\n", info.Client.Version)
			if commit != "" {
				fmt.Fprintf(out, "Client Commit: %s\n", commit)
			}
			fmt.Fprintf(out, "Go Version: %s\n", info.Client.GoVersion)
			if clientOnly {
				return nil
			}
			if clusterErr != nil {
				return clusterErr
			}
			if info.Policy != nil {
				fmt.Fprintf(out, "Policy Revision: %s (from Job %s)\n", info.Policy.Revision, info.Policy.Job)
			} else {
				fmt.Fprintf(out, "Policy Revision: unknown (no agent Job in namespace %s carries one yet)\n", o.namespace)
			}
			fmt.Fprintf(out, "Server Version: %s\n", info.Server.GitVersion)
			return nil
		},
	}
	cmd.Flags().BoolVar(&clientOnly, "client", false, "only the CLI's version; do not contact the cluster")
	return cmd
}

// clusterVersion fills the server's version and the policy revision.
func (o *options) clusterVersion(ctx context.Context, info *VersionInfo) error {
	cs, err := o.deps.clientset(o)
	if err != nil {
		return err
	}
	sv, err := cs.Discovery().ServerVersion()
	if err != nil {
		return fmt.Errorf("the API server's version: %w (--client prints the CLI's alone)", err)
	}
	info.Server = sv
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	list, err := cs.BatchV1().Jobs(o.namespace).List(ctx, metav1.ListOptions{LabelSelector: contract.LabelApp + "=" + contract.AppName})
	if err != nil {
		return fmt.Errorf("policy revision: list the agent Jobs in namespace %s: %w", o.namespace, err)
	}
	var newest *metav1.ObjectMeta
	for i := range list.Items {
		m := &list.Items[i].ObjectMeta
		if m.Annotations[contract.AnnotationPolicyRevision] == "" {
			continue
		}
		if newest == nil || m.CreationTimestamp.After(newest.CreationTimestamp.Time) ||
			(m.CreationTimestamp.Equal(&newest.CreationTimestamp) && m.Name > newest.Name) {
			newest = m
		}
	}
	if newest != nil {
		info.Policy = &PolicyVersion{Revision: newest.Annotations[contract.AnnotationPolicyRevision], Job: newest.Namespace + "/" + newest.Name}
	}
	return nil
}
