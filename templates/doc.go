// Package templates renders a FlowForge job request into a plain, labelled
// batch/v1 Job from a YAML worker template.
//
// # What the renderer does and does not do
//
// A Request (id, user, repository and branch, task, timeout, profile, node
// selector, extra env, template) is validated, every problem at once, each
// naming its field (see ValidationError), then normalized (defaults from the
// template, then from the Renderer) and rendered. The Job carries the
// contract that the webhook, the controller and the CLI rely on (contract.go):
// the labels app=flowforge, component=worker, job-id and user-id on the Job
// and its pod template; the annotations flowforge.io/repository, branch,
// profile, timeout (seconds), template and request-hash; the env JOB_ID,
// REPOSITORY_URL, BRANCH, TASK (or TASK_FILE), ANTHROPIC_API_KEY from Secret
// claude-secret and GIT_CREDENTIALS from Secret git-credentials-<id>. The Job
// is named claude-job-<id>.
//
// The renderer does not harden anything: no runtime class, security context,
// resources, deadline, TTL, tolerations or priority class. The mutating
// webhook adds those to every Job labelled app=flowforge, whoever created it,
// from the policy data, so there is one place where they are decided. The
// renderer only states what the policy reads: the profile and timeout
// annotations. It does set restartPolicy Never (a Job requires Never or
// OnFailure, and the webhook enforces Never).
//
// # The task text
//
// The task is data, never code. It reaches the worker either as the
// environment variable TASK, for tasks up to RendererOptions.MaxInlineTaskSize
// (32 KiB by default), or, above that, in a ConfigMap claude-job-<id>-task
// (immutable, key task.md) mounted read-only at /var/run/flowforge/task, with
// TASK_FILE=/var/run/flowforge/task/task.md. Tasks above MaxTaskSize
// (512 KiB) are refused. The worker reads TASK, or the file TASK_FILE names.
//
// Why this split: a small task in an env var is one object, visible with the
// Job and with no extra API call. A large one would bloat the Job (which is
// copied into every pod and every watch event, with a 1.5 MiB object limit)
// and approach the kernel's 128 KiB limit on one environment string, so it
// goes into a ConfigMap (1 MiB limit), which the client makes owned by the
// Job so that it is garbage-collected with it. Either way, nothing from the
// request is put on a command line or into a shell: templates use exec form,
// "sh -c" is refused, and command/args may not reference $(TASK) or the
// secret variables. Because the kubelet expands $(NAME) in env values and
// turns "$$" into "$", every "$" in a value from the request is written as
// "$$", so the worker sees the request's text exactly.
//
// # Templates
//
// Templates are YAML files, one per template, named <name>.yaml. Those in
// workers/ are embedded in the binary (claude-code, the default, and
// claude-code-review); RendererOptions.Dir adds a platform team's own, and
// one there replaces an embedded template of the same name. Unknown fields
// are an error. The schema:
//
//	name: claude-code            # required; equals the file name; a DNS label
//	description: ...             # optional, for people choosing a template
//	container:
//	  name: worker               # default "worker"
//	  image: ghcr.io/flowforge/claude-worker:1.4.0
//	                             # required; an allowed registry, pinned by a
//	                             # tag other than latest, or by a digest
//	  command: [/usr/local/bin/flowforge-worker]   # required, exec form
//	  args: [run, --push]        # optional, exec form
//	  workingDir: /workspace     # optional
//	  env:                       # optional literal values; not the reserved
//	  - {name: FOO, value: bar}  # names; a request's env may override them
//	defaultProfile: medium       # optional; else RendererOptions.DefaultProfile
//	defaultTimeout: 1h           # optional Go duration; else DefaultTimeout
//	podAnnotations: {}           # optional; keys under flowforge.io/ are reserved
//
// The schema is deliberately small: a template chooses the program and its
// defaults; everything about isolation and sizing is policy.
//
// # Idempotency
//
// HashRequest hashes the normalized request (defaults filled in), and the
// Job records it in flowforge.io/request-hash. Submitting the same request
// again finds a Job with the same id and hash and is a no-op; another
// request with the same id is a conflict (see package jobs).
package templates
