package cli

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/flowforge/flowforge/contract"
)

// completionTimeout bounds the cluster and history lookups of one
// completion: a shell waits for them.
const completionTimeout = 5 * time.Second

// completionHistoryLimit is how many history records a completion reads.
const completionHistoryLimit = 200

// registerCompletions wires dynamic completion: job ids for the commands
// that take one, namespaces for -n, the output formats for -o. Cobra adds
// the `completion bash|zsh|fish|powershell` command itself.
func (o *options) registerCompletions(root *cobra.Command) {
	for _, c := range root.Commands() {
		switch c.Name() {
		case "status", "logs":
			c.ValidArgsFunction = o.completeJobIDs(true)
		case "watch", "cancel":
			c.ValidArgsFunction = o.completeJobIDs(false)
		}
	}
	_ = root.RegisterFlagCompletionFunc("namespace", o.completeNamespaces)
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions([]cobra.Completion{"table", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
}

// completeJobIDs completes the first argument with the job ids of the
// Jobs in the namespace (their job-id label) and, withHistory, of the
// history's records (jobs the cluster has deleted). A source that cannot
// be read adds nothing: completion never prints errors.
func (o *options) completeJobIDs(withHistory bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(contextOf(cmd), completionTimeout)
		defer cancel()
		ids := o.clusterJobIDs(ctx)
		if withHistory {
			ids = append(ids, o.historyJobIDs(ctx)...)
		}
		slices.Sort(ids)
		ids = slices.Compact(ids)
		out := make([]cobra.Completion, 0, len(ids))
		for _, id := range ids {
			if strings.HasPrefix(id, toComplete) {
				out = append(out, id)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

func (o *options) clusterJobIDs(ctx context.Context) []string {
	cs, err := o.deps.clientset(o)
	if err != nil {
		return nil
	}
	list, err := cs.BatchV1().Jobs(o.namespace).List(ctx, metav1.ListOptions{
		LabelSelector: contract.LabelApp + "=" + contract.AppName + "," + contract.LabelJobID,
	})
	if err != nil {
		return nil
	}
	ids := make([]string, 0, len(list.Items))
	for _, j := range list.Items {
		if id := j.Labels[contract.LabelJobID]; id != "" {
			ids = append(ids, id)
		}
	}
	return ids
}

func (o *options) historyJobIDs(ctx context.Context) []string {
	hc, err := o.history(ctx)
	if err != nil {
		return nil
	}
	recs, err := hc.Jobs(ctx, "", "", time.Time{}, completionHistoryLimit)
	if err != nil {
		return nil
	}
	ids := make([]string, 0, len(recs))
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	return ids
}

// completeNamespaces completes -n with the cluster's namespaces.
func (o *options) completeNamespaces(cmd *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	ctx, cancel := context.WithTimeout(contextOf(cmd), completionTimeout)
	defer cancel()
	cs, err := o.deps.clientset(o)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	list, err := cs.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, ns := range list.Items {
		if strings.HasPrefix(ns.Name, toComplete) {
			out = append(out, ns.Name)
		}
	}
	slices.Sort(out)
	return out, cobra.ShellCompDirectiveNoFileComp
}

// contextOf is the command's context, or Background when it has none
// (cobra's __complete runs completion functions without one).
func contextOf(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}
