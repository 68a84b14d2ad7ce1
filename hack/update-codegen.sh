#!/usr/bin/env bash
# Regenerates the deepcopy functions of history.flowforge.io/v1alpha1 and
# the OpenAPI definitions the aggregated history API server publishes
# (genericapiserver needs them for its type converter). Run it after
# editing history/apis/v1alpha1/types.go; the tools are built into
# $GOBIN (default /tmp/gentools/bin) from the module proxy.
set -euo pipefail
cd "$(dirname "$0")/.."
GOBIN=${GOBIN:-/tmp/gentools/bin}
export GOBIN
go install k8s.io/code-generator/cmd/deepcopy-gen@v0.37.2
go install "k8s.io/kube-openapi/cmd/openapi-gen@$(go list -m -f '{{.Version}}' k8s.io/kube-openapi)"
header=$(mktemp)
trap 'rm -f "$header"' EXIT
"$GOBIN/deepcopy-gen" --go-header-file "$header" --output-file zz_generated.deepcopy.go ./history/apis/v1alpha1
"$GOBIN/openapi-gen" --go-header-file "$header" \
  --output-dir history/apiserver/openapi \
  --output-pkg github.com/flowforge/flowforge/history/apiserver/openapi \
  --output-file zz_generated.openapi.go \
  --report-filename /dev/null \
  k8s.io/apimachinery/pkg/apis/meta/v1 k8s.io/apimachinery/pkg/runtime k8s.io/apimachinery/pkg/version \
  ./history/apis/v1alpha1
