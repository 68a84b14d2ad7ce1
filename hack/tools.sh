#!/usr/bin/env bash
# Builds the pinned control-plane and policy programs from tools/go.mod into
# bin/. Idempotent: a program is rebuilt only when it is missing or when the
# module version embedded in the binary differs from the pinned one.
# Arguments, if any, name the programs to check (default: all of them).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
bin=${BIN_DIR:-$root/bin}
mkdir -p "$bin"
cd "$root/tools"

k8s_ver=$(go list -m -f '{{.Version}}' k8s.io/kubernetes)
k8s_minor=$(echo "$k8s_ver" | cut -d. -f2)
k8s_ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_ver -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$k8s_minor -X k8s.io/component-base/version.gitTreeState=clean"

# name | package | module whose version the binary must embed
programs=(
  "etcd|go.etcd.io/etcd/server/v3|go.etcd.io/etcd/server/v3"
  "kube-apiserver|k8s.io/kubernetes/cmd/kube-apiserver|k8s.io/kubernetes"
  "kube-controller-manager|k8s.io/kubernetes/cmd/kube-controller-manager|k8s.io/kubernetes"
  "kube-scheduler|k8s.io/kubernetes/cmd/kube-scheduler|k8s.io/kubernetes"
  "kubectl|k8s.io/kubernetes/cmd/kubectl|k8s.io/kubernetes"
  "kwok|sigs.k8s.io/kwok/cmd/kwok|sigs.k8s.io/kwok"
  "opa|github.com/open-policy-agent/opa|github.com/open-policy-agent/opa"
)

embedded_version() { # binary module
  go version -m "$1" 2>/dev/null | awk -v m="$2" '($1=="dep" || $1=="mod") && $2==m {print $3; exit}'
}

if [[ $# -gt 0 ]]; then
  selected=()
  for entry in "${programs[@]}"; do
    for want in "$@"; do [[ "${entry%%|*}" == "$want" ]] && selected+=("$entry"); done
  done
  programs=("${selected[@]}")
fi
total=${#programs[@]}
i=0
for entry in "${programs[@]}"; do
  i=$((i + 1))
  IFS='|' read -r name pkg mod <<<"$entry"
  want=$(go list -m -f '{{.Version}}' "$mod")
  have=$(embedded_version "$bin/$name" "$mod" || true)
  if [[ "$have" == "$want" ]]; then
    echo "[$i/$total] $name $want: up to date" >&2
    continue
  fi
  echo "[$i/$total] $name $want: building (was: ${have:-missing}) ..." >&2
  start=$(date +%s)
  ldflags="-s -w"
  [[ "$mod" == "k8s.io/kubernetes" ]] && ldflags=$k8s_ldflags
  go build -ldflags "$ldflags" -o "$bin/$name.tmp" "$pkg"
  mv "$bin/$name.tmp" "$bin/$name"
  echo "[$i/$total] $name $want: built in $(( $(date +%s) - start ))s" >&2
done
