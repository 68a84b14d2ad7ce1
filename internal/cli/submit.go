package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pmezard/go-difflib/difflib"
	"github.com/spf13/cobra"
	batchv1 "k8s.io/api/batch/v1"
	"sigs.k8s.io/yaml"

	"github.com/flowforge/flowforge/contract"
	"github.com/flowforge/flowforge/templates"
)

func newSubmitCommand(o *options) *cobra.Command {
	var (
		req       templates.Request
		file      string
		taskFile  string
		wait      bool
		logs      bool
		diff      bool
		selectors []string
		env       []string
		podAnn    []string
	)
	cmd := &cobra.Command{
		Use:   "submit [flags] | -f request.yaml",
		Short: "Submit an agent job",
		Long: `Submit renders a job request into a Job and creates it; the cluster's
FlowForge webhook hardens it. Submitting the same request again returns the
existing job. With --wait it follows the job to its end and exits with the
job's outcome (0 succeeded, 3 failed, 4 timed out, 5 cancelled).`,
		Example: `  flowforge submit --id fix-123 --user alice --repository acme/widgets \
    --repository-url https://github.com/acme/widgets.git --branch fix-123 \
    --task "Fix the failing test in parser_test.go" --timeout 30m --wait
  flowforge submit -f request.yaml --diff`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file != "" {
				data, err := readInput(file, o)
				if err != nil {
					return withCode(ExitUsage, err)
				}
				fromFile, err := templates.ParseRequest(data)
				if err != nil {
					return withCode(ExitUsage, fmt.Errorf("%s: %w", file, err))
				}
				req = mergeRequest(fromFile, req)
			}
			if taskFile != "" {
				data, err := os.ReadFile(taskFile)
				if err != nil {
					return withCode(ExitUsage, fmt.Errorf("read task: %w", err))
				}
				req.Task = string(data)
			}
			var err error
			if req.NodeSelector, err = mergePairs(req.NodeSelector, selectors, "--node-selector"); err != nil {
				return err
			}
			if req.Env, err = mergePairs(req.Env, env, "--env"); err != nil {
				return err
			}
			if req.PodAnnotations, err = mergePairs(req.PodAnnotations, podAnn, "--pod-annotation"); err != nil {
				return err
			}
			if logs && !wait {
				return withCode(ExitUsage, fmt.Errorf("--logs streams the logs while --wait follows the job: add --wait"))
			}
			return o.submit(cmd.Context(), req, submitFlags{wait: wait, logs: logs, diff: diff})
		},
	}
	f := cmd.Flags()
	f.StringVarP(&file, "filename", "f", "", "read the request from a YAML or JSON file (- for stdin); flags override its fields")
	f.StringVar(&req.ID, "id", "", "job id (the Job is named claude-job-<id>)")
	f.StringVar(&req.UserID, "user", "", "user the job runs for")
	f.StringVar(&req.Repository, "repository", "", "repository name, for people (acme/widgets)")
	f.StringVar(&req.RepositoryURL, "repository-url", "", "git URL the agent clones")
	f.StringVar(&req.Branch, "branch", "", "branch the agent works on")
	f.StringVar(&req.Task, "task", "", "the task for the agent")
	f.StringVar(&taskFile, "task-file", "", "read the task from a file")
	f.DurationVar(&req.Timeout, "timeout", 0, "run time limit (default: the template's)")
	f.StringVar(&req.Profile, "profile", "", "resource profile: small, medium or large (default: the template's)")
	f.StringVar(&req.Template, "template", "", "worker template (default: claude-code)")
	f.StringArrayVar(&selectors, "node-selector", nil, "extra node selector, key=value (repeatable)")
	f.StringArrayVar(&env, "env", nil, "extra environment variable, NAME=value (repeatable)")
	f.StringArrayVar(&podAnn, "pod-annotation", nil, "pod annotation, key=value (repeatable)")
	f.BoolVar(&wait, "wait", false, "follow the job until it ends and exit with its outcome")
	f.BoolVar(&logs, "logs", false, "with --wait: stream the job's logs while it runs")
	f.BoolVar(&diff, "diff", false, "show what the admission webhook changed in the Job")
	return cmd
}

// submitFlags are submit's switches.
type submitFlags struct{ wait, logs, diff bool }

func (o *options) submit(ctx context.Context, req templates.Request, sf submitFlags) error {
	if err := checkOutput(o.output); err != nil {
		return err
	}
	c, err := o.client()
	if err != nil {
		return err
	}
	job, created, err := c.Submit(ctx, req)
	if err != nil {
		var invalid *templates.ValidationError
		if errors.As(err, &invalid) {
			return withCode(ExitUsage, err)
		}
		return err
	}
	verb := "created"
	if !created {
		verb = "already exists (same request)"
	}
	out := o.streams.Out
	structured := o.output == "json" || o.output == "yaml"
	if structured {
		// stdout is the JSON or YAML document; what happened goes to stderr.
		out = o.streams.Err
	}
	fmt.Fprintf(out, "job %s %s: Job %s/%s, policy revision %s\n", req.ID, verb, job.Namespace, job.Name, orDash(job.Annotations[contract.AnnotationPolicyRevision]))
	if sf.diff {
		rendered, err := c.Renderer().Render(req)
		if err != nil {
			return err
		}
		text, err := webhookDiff(rendered.Job, job)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "\nWhat the admission webhook changed:\n%s\n", text)
	}
	if !sf.wait {
		if structured {
			_, err := printStructured(o.streams.Out, o.output, contract.StatusOf(job))
			return err
		}
		return nil
	}
	return o.follow(ctx, c, req.ID, sf.logs)
}

// webhookDiff is a unified diff between the Job as rendered and as stored.
func webhookDiff(rendered, stored *batchv1.Job) (string, error) {
	clean := func(j *batchv1.Job) (string, error) {
		c := j.DeepCopy()
		c.Status = batchv1.JobStatus{}
		c.ResourceVersion, c.UID, c.Generation, c.ManagedFields = "", "", 0, nil
		c.CreationTimestamp = stored.CreationTimestamp
		c.Namespace = stored.Namespace
		c.TypeMeta = stored.TypeMeta
		data, err := yaml.Marshal(c)
		return string(data), err
	}
	a, err := clean(rendered)
	if err != nil {
		return "", err
	}
	b, err := clean(stored)
	if err != nil {
		return "", err
	}
	return difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(a), B: difflib.SplitLines(b),
		FromFile: "rendered by flowforge", ToFile: "admitted by the cluster", Context: 2,
	})
}

// mergeRequest fills the empty fields of flags from file.
func mergeRequest(file, flags templates.Request) templates.Request {
	out := file
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&out.ID, flags.ID)
	set(&out.UserID, flags.UserID)
	set(&out.Repository, flags.Repository)
	set(&out.RepositoryURL, flags.RepositoryURL)
	set(&out.Branch, flags.Branch)
	set(&out.Task, flags.Task)
	set(&out.Profile, flags.Profile)
	set(&out.Template, flags.Template)
	if flags.Timeout != 0 {
		out.Timeout = flags.Timeout
	}
	return out
}

// mergePairs adds key=value flags to a map.
func mergePairs(m map[string]string, pairs []string, flag string) (map[string]string, error) {
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok || k == "" {
			return nil, withCode(ExitUsage, fmt.Errorf("%s %q: want key=value", flag, p))
		}
		if m == nil {
			m = map[string]string{}
		}
		m[k] = v
	}
	return m, nil
}

func readInput(path string, o *options) ([]byte, error) {
	if path == "-" {
		data, err := io.ReadAll(io.LimitReader(o.streams.In, 8<<20))
		if err != nil {
			return nil, fmt.Errorf("read stdin: %w", err)
		}
		return data, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return data, nil
}
