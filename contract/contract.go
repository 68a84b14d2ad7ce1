package contract

// The names below are a contract shared with the webhook's policy data
// (policies/data.yaml), the FlowForge controller and the CLI. Changing one
// changes it for all of them.

// Labels on a worker Job and on its pod template. The webhook selects Jobs by
// LabelApp=AppName; the controller and the per-job git credentials key on
// LabelJobID and LabelUserID.
const (
	LabelApp       = "app"
	LabelComponent = "component"
	LabelJobID     = "job-id"
	LabelUserID    = "user-id"

	// AppName is the value of LabelApp that makes the webhook harden a Job.
	AppName = "flowforge"
	// ComponentWorker is the value of LabelComponent on agent Jobs.
	ComponentWorker = "worker"
)

// Annotations the renderer writes on a Job.
const (
	// AnnotationRepository names the repository the agent works on.
	AnnotationRepository = "flowforge.io/repository"
	// AnnotationBranch is the branch the agent works on.
	AnnotationBranch = "flowforge.io/branch"
	// AnnotationProfile is the resource profile the webhook sizes the Job by.
	AnnotationProfile = "flowforge.io/profile"
	// AnnotationTimeout is the run time limit in seconds as a decimal string
	// ("1800"); the webhook turns it into spec.activeDeadlineSeconds.
	AnnotationTimeout = "flowforge.io/timeout"
	// AnnotationTemplate is the name of the worker template the Job was
	// rendered from.
	AnnotationTemplate = "flowforge.io/template"
	// AnnotationRequestHash is the hash of the normalized request the Job was
	// rendered from; the client compares it to make Submit idempotent.
	AnnotationRequestHash = "flowforge.io/request-hash"
)

// Annotations written by others.
const (
	// AnnotationCancelRequestedBy, AnnotationCancelReason and
	// AnnotationCancelRequestedAt (RFC 3339) record a cancellation request.
	// The client writes them once; the controller acts on them.
	AnnotationCancelRequestedBy = "flowforge.io/cancel-requested-by"
	AnnotationCancelReason      = "flowforge.io/cancel-reason"
	AnnotationCancelRequestedAt = "flowforge.io/cancel-requested-at"

	// AnnotationTerminationReason is written by the controller when it ends
	// a Job itself, with one of the TerminationReason values.
	AnnotationTerminationReason = "flowforge.io/termination-reason"
	// AnnotationPolicyRevision is written by the webhook: the policy
	// revision that hardened the Job.
	AnnotationPolicyRevision = "flowforge.io/policy-revision"
	// AnnotationTTLSecondsAfterFinished is written by the webhook (policy
	// data annotations.ttlSecondsAfterFinished): seconds after the Job
	// finished that the FlowForge controller deletes it, once its export is
	// complete. It replaces spec.ttlSecondsAfterFinished, which the webhook
	// moves here; a client may set it on create and lower it later.
	AnnotationTTLSecondsAfterFinished = "flowforge.io/ttl-seconds-after-finished"
)

// Values of AnnotationTerminationReason.
const (
	// TerminationCancelled: the controller ended the Job on a cancel request.
	TerminationCancelled = "Cancelled"
	// TerminationPendingTimeout: the Job's pods stayed Pending too long.
	TerminationPendingTimeout = "PendingTimeout"
)

// Environment variables of the worker container.
const (
	EnvJobID         = "JOB_ID"
	EnvRepositoryURL = "REPOSITORY_URL"
	EnvBranch        = "BRANCH"
	// EnvTask holds the task text when it is at most the inline limit.
	EnvTask = "TASK"
	// EnvTaskFile holds the path of the task file when the task is too
	// large for an environment variable (see TaskMountPath).
	EnvTaskFile = "TASK_FILE"
	// EnvAPIKey is read from Secret APIKeySecret, key APIKeySecretKey.
	EnvAPIKey = "ANTHROPIC_API_KEY"
	// EnvGitCredentials is read from Secret GitCredentialsSecretPrefix+<id>,
	// key GitCredentialsSecretKey.
	EnvGitCredentials = "GIT_CREDENTIALS"
)

// Secrets the worker reads. The renderer only references them; creating
// them is the job of whoever provisions credentials.
const (
	APIKeySecret               = "claude-secret"
	APIKeySecretKey            = "api-key"
	GitCredentialsSecretPrefix = "git-credentials-"
	GitCredentialsSecretKey    = "credentials"
)

// Names derived from a job id, and where a large task is mounted.
const (
	// JobNamePrefix + id is the Job's name.
	JobNamePrefix = "claude-job-"
	// TaskConfigMapSuffix: a large task goes into ConfigMap
	// JobNamePrefix+id+TaskConfigMapSuffix.
	TaskConfigMapSuffix = "-task"
	// TaskConfigMapKey is the key of the task text in that ConfigMap.
	TaskConfigMapKey = "task.md"
	// TaskVolumeName is the pod volume of that ConfigMap.
	TaskVolumeName = "task"
	// TaskMountPath is where the volume is mounted read-only; the task file
	// is TaskMountPath + "/" + TaskConfigMapKey.
	TaskMountPath = "/var/run/flowforge/task"
)

// JobName returns the name of the Job for a job id.
func JobName(id string) string { return JobNamePrefix + id }

// TaskConfigMapName returns the name of the task ConfigMap for a job id.
func TaskConfigMapName(id string) string { return JobNamePrefix + id + TaskConfigMapSuffix }

// GitCredentialsSecretName returns the name of a job's git credentials Secret.
func GitCredentialsSecretName(id string) string { return GitCredentialsSecretPrefix + id }

// TaskFilePath is the path of the task file inside the worker container.
const TaskFilePath = TaskMountPath + "/" + TaskConfigMapKey

// ReservedEnv returns the names of the environment variables the renderer
// owns, which neither a template's nor a request's extra env may set.
func ReservedEnv() []string {
	return []string{EnvJobID, EnvRepositoryURL, EnvBranch, EnvTask, EnvTaskFile, EnvAPIKey, EnvGitCredentials}
}

// IsReservedEnv reports whether the renderer owns an environment variable name.
func IsReservedEnv(name string) bool {
	switch name {
	case EnvJobID, EnvRepositoryURL, EnvBranch, EnvTask, EnvTaskFile, EnvAPIKey, EnvGitCredentials:
		return true
	}
	return false
}
