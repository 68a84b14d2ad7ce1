package policies

// Claim sources: where a ClaimHolder was found.
const (
	// ClaimSourceCluster: a Job that exists in the cluster.
	ClaimSourceCluster = "cluster"
	// ClaimSourceHistory: a Job that is gone but recorded in the history.
	ClaimSourceHistory = "history"
)

// Claims are what the identity policy (validate/identity) needs to know
// about other objects: who else holds this Job's job-id. The handler
// gathers them from local caches before evaluation, so that evaluation
// never waits on the network. The policy sees them as input.claims.
type Claims struct {
	// JobID lists the Jobs in the namespace that carry the same job-id
	// (input.claims.jobID), including the Job itself when it exists. An
	// empty list means nobody else does.
	JobID []ClaimHolder
}

// ClaimHolder is one Job that holds a job-id.
type ClaimHolder struct {
	Name   string
	UID    string
	Source string
}

// The record of a job-id that a Job gone from the cluster held: the
// FlowForge controller writes one, a ConfigMap without data in its own
// namespace, before it lets an exported Job go, and the webhook caches
// their metadata. Tenants of a managed namespace cannot delete them.
const (
	// ClaimNamespaceLabel is the namespace of the Job that held the job-id.
	ClaimNamespaceLabel = "flowforge.io/claim-namespace"
	// ClaimJobIDLabel is the job-id.
	ClaimJobIDLabel = "flowforge.io/claim-job-id"
	// ClaimJobNameAnnotation and ClaimJobUIDAnnotation name the Job.
	ClaimJobNameAnnotation = "flowforge.io/claim-job-name"
	ClaimJobUIDAnnotation  = "flowforge.io/claim-job-uid"
	// DefaultClaimNamespace is where the records live: FlowForge's own
	// namespace (deploy/namespace.yaml).
	DefaultClaimNamespace = "flowforge-system"
)
