package contract

import (
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
)

// Who deletes a finished Job after its TTL.
const (
	// DeletedByFlowForge: the FlowForge controller, once the export is
	// complete (the TTL is in AnnotationTTLSecondsAfterFinished).
	DeletedByFlowForge = "flowforge"
	// DeletedByTTLController: the built-in TTL-after-finished controller (a
	// Job admitted before FlowForge owned deletion, or with the export off,
	// whose TTL is in spec.ttlSecondsAfterFinished).
	DeletedByTTLController = "ttl-controller"
)

// maxTTLSeconds bounds a TTL read from an annotation (the policy's own
// maximum is far lower; this only keeps the arithmetic finite).
const maxTTLSeconds = 10 * 365 * 24 * 3600

// TTLAfterFinished returns how long after it finished the Job is deleted,
// and who deletes it. The annotation (named by annotation, normally
// AnnotationTTLSecondsAfterFinished) wins over
// spec.ttlSecondsAfterFinished. ok is false when the Job has no TTL, or an
// annotation that is not a whole number of seconds (validation refuses
// those; such a Job is kept).
func TTLAfterFinished(job *batchv1.Job, annotation string) (ttl time.Duration, by string, ok bool) {
	if raw, present := job.Annotations[annotation]; present {
		n, err := strconv.ParseInt(raw, 10, 64)
		if err != nil || n < 0 || n > maxTTLSeconds {
			return 0, "", false
		}
		return time.Duration(n) * time.Second, DeletedByFlowForge, true
	}
	if t := job.Spec.TTLSecondsAfterFinished; t != nil && *t >= 0 {
		return time.Duration(*t) * time.Second, DeletedByTTLController, true
	}
	return 0, "", false
}

// deletionOf fills in the TTL fields of a status.
func deletionOf(job *batchv1.Job, s *Status) {
	ttl, by, ok := TTLAfterFinished(job, AnnotationTTLSecondsAfterFinished)
	if !ok {
		return
	}
	secs := int64(ttl / time.Second)
	s.TTLSecondsAfterFinished, s.DeletedBy = &secs, by
	if s.Finished != nil {
		at := s.Finished.Add(ttl)
		s.DeleteAfter = &at
	}
}
