package localcluster

import (
	"fmt"
	"os"
	"path/filepath"
)

// admissionConfig is the API server's admission configuration. It makes
// the ResourceQuota plugin treat the critical priority classes as limited
// resources, as GKE (and any cluster that follows the Kubernetes guidance
// "Limit Priority Class consumption by default") does: a pod with
// priorityClassName system-cluster-critical or system-node-critical is
// refused in a namespace without a ResourceQuota whose scopeSelector
// covers that class. kube-system gets no such quota here either; nothing
// FlowForge's tests run lives there. deploy/quota.yaml is what lets the
// webhook's system-cluster-critical pods run in flowforge-system, and the
// deploy tests check it against this configuration.
const admissionConfig = `apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: ResourceQuota
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: ResourceQuotaConfiguration
    limitedResources:
    - resource: pods
      matchScopes:
      - scopeName: PriorityClass
        operator: In
        values: [system-cluster-critical, system-node-critical]
`

// writeAdmissionConfig writes admissionConfig into dir and returns its path.
func writeAdmissionConfig(dir string) (string, error) {
	path := filepath.Join(dir, "admission.yaml")
	if err := os.WriteFile(path, []byte(admissionConfig), 0o644); err != nil {
		return "", fmt.Errorf("local cluster: admission config: %w", err)
	}
	return path, nil
}
