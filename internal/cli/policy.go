package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/loader"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/spf13/cobra"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	"sigs.k8s.io/yaml"

	"github.com/flowforge/flowforge/mutate"
	"github.com/flowforge/flowforge/policies"
	"github.com/flowforge/flowforge/policies/engine"
	"github.com/flowforge/flowforge/validate"
)

func newPolicyCommand(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Check admission policies offline, without a cluster",
	}
	cmd.AddCommand(newPolicyApplyCommand(o), newPolicyTestCommand(o))
	return cmd
}

func newPolicyApplyCommand(o *options) *cobra.Command {
	var file, policyDir, namespace string
	var nsLabels, asGroups []string
	var as string
	cmd := &cobra.Command{
		Use:   "apply -f job.yaml",
		Short: "Print a Job as the webhook would harden it, and what validation says",
		Long: `apply runs a Job through the same mutating and validating handlers as the
webhook, with the embedded policies or those of --policy-dir: it prints the
hardened Job on stdout and the validation verdict (every violation with its
field, and warnings) on stderr. It exits 6 when validation denies the Job.
The request comes from the Job's owner (the user its user-id label names)
unless --as says otherwise, and no other Job holds its job-id.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return withCode(ExitUsage, fmt.Errorf("-f job.yaml is required"))
			}
			data, err := readInput(file, o)
			if err != nil {
				return withCode(ExitUsage, err)
			}
			raw, err := yaml.YAMLToJSON(data)
			if err != nil {
				return withCode(ExitUsage, fmt.Errorf("%s: %w", file, err))
			}
			labels, err := mergePairs(map[string]string{"kubernetes.io/metadata.name": namespace}, nsLabels, "--namespace-label")
			if err != nil {
				return err
			}
			return o.policyApply(cmd.Context(), raw, policyDir, namespace, labels, authenticationv1.UserInfo{Username: as, Groups: asGroups})
		},
	}
	cmd.Flags().StringVarP(&file, "filename", "f", "", "the Job, YAML or JSON (- for stdin)")
	cmd.Flags().StringVar(&policyDir, "policy-dir", "", "policy directory (default: the embedded policies)")
	cmd.Flags().StringVar(&namespace, "job-namespace", "default", "namespace the Job would be created in")
	cmd.Flags().StringArrayVar(&nsLabels, "namespace-label", nil, "a label of that namespace, key=value (repeatable)")
	cmd.Flags().StringVar(&as, "as", "", "the username that creates the Job (default: the owner its user-id label names)")
	cmd.Flags().StringArrayVar(&asGroups, "as-group", nil, "a group of that user (repeatable)")
	return cmd
}

func (o *options) policyApply(ctx context.Context, job []byte, policyDir, namespace string, nsLabels map[string]string, user authenticationv1.UserInfo) error {
	eng, err := engine.New(ctx, engine.Options{Dir: policyDir, Tested: o.deps.tested})
	if err != nil {
		return err
	}
	labels := func(context.Context, string) (map[string]string, error) { return nsLabels, nil }
	if user.Username == "" {
		user.Username = owner(eng.Current(), job)
	}
	validator := validate.NewJobHandler(eng, labels, clock.RealClock{})
	// Offline, nobody else holds the Job's job-id.
	validator.Claims = func(context.Context, string, string) ([]policies.ClaimHolder, error) { return nil, nil }
	hardened, resp, verdict, err := validate.Review(ctx, &mutate.Handler{Policy: eng, Namespaces: labels, Clock: clock.RealClock{}}, validator, namespace, job, user)
	if err != nil {
		return withCode(ExitDenied, err)
	}
	if err := checkOutput(o.output); err != nil {
		return err
	}
	// The hardened Job is YAML, or JSON with -o json.
	out := append(hardened, '\n')
	if o.output != "json" {
		if out, err = yaml.JSONToYAML(hardened); err != nil {
			return err
		}
	}
	if _, err := o.streams.Out.Write(out); err != nil {
		return err
	}
	for _, w := range resp.Warnings {
		fmt.Fprintf(o.streams.Err, "Warning (mutation): %s\n", w)
	}
	for _, w := range verdict.Warnings {
		fmt.Fprintf(o.streams.Err, "Warning: %s\n", w)
	}
	if !verdict.Allowed {
		msg := "denied"
		if verdict.Result != nil {
			msg = verdict.Result.Message
		}
		fmt.Fprintf(o.streams.Err, "Denied (policy %s): %s\n", eng.Current().Revision, msg)
		return withCode(ExitDenied, nil)
	}
	fmt.Fprintf(o.streams.Err, "Admitted (policy %s; the webhook's patch has %d operations)\n", eng.Current().Revision, len(resp.Patches))
	return nil
}

// owner is the username a Job's user-id label names, which for a
// label-safe username is the username itself.
func owner(p *engine.Policy, job []byte) string {
	label, _ := p.Config("identity", "userIDLabel").(string)
	var obj struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(job, &obj); err != nil {
		return ""
	}
	return obj.Metadata.Labels[label]
}

func newPolicyTestCommand(o *options) *cobra.Command {
	var policyDir string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "test",
		Short: "Run the policies' own tests (the *_test.rego files), as the webhook does before it accepts a policy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var fsys fs.FS = policies.Embedded()
			source := "embedded policies"
			if policyDir != "" {
				fsys, source = os.DirFS(policyDir), policyDir
			}
			b, err := loader.NewFileLoader().WithFS(fsys).WithRegoVersion(ast.RegoV1).AsBundle(".")
			if err != nil {
				return fmt.Errorf("load %s: %w", source, err)
			}
			if err := checkOutput(o.output); err != nil {
				return err
			}
			structured := o.output == "json" || o.output == "yaml"
			report := policyTestReport{Source: source, Tests: []policyTestResult{}}
			passed, err := engine.RunTests(cmd.Context(), b, func(r *tester.Result) {
				status := "PASS"
				if r.Fail || r.Error != nil {
					status = "FAIL"
				}
				name := strings.TrimPrefix(r.Package, "data.") + "." + r.Name
				report.Tests = append(report.Tests, policyTestResult{Name: name, Status: status, Duration: r.Duration.String()})
				if !structured && (verbose || status == "FAIL") {
					fmt.Fprintf(o.streams.Out, "%s  %s (%s)\n", status, name, r.Duration.Round(1000))
				}
			})
			report.Passed = passed
			if structured {
				report.OK = err == nil
				if err != nil {
					report.Error = err.Error()
				}
				if _, perr := printStructured(o.streams.Out, o.output, report); perr != nil {
					return perr
				}
				if err != nil {
					return withCode(ExitFailed, nil)
				}
				return nil
			}
			if err != nil {
				return withCode(ExitFailed, fmt.Errorf("%s: %w", source, err))
			}
			fmt.Fprintf(o.streams.Out, "PASS: %d/%d tests of %s\n", passed, passed, source)
			return nil
		},
	}
	cmd.Flags().StringVar(&policyDir, "policy-dir", "", "policy directory (default: the embedded policies)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "list every test")
	return cmd
}

// policyTestReport is what `policy test -o json` prints.
type policyTestReport struct {
	Source string             `json:"source"`
	OK     bool               `json:"ok"`
	Passed int                `json:"passed"`
	Error  string             `json:"error,omitempty"`
	Tests  []policyTestResult `json:"tests"`
}

type policyTestResult struct {
	Name     string `json:"name"`
	Status   string `json:"status"`
	Duration string `json:"duration"`
}
