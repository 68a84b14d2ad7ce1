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

# name | package | module whose version the binary must embed [| module
# directory, default tools]
programs=(
  "etcd|go.etcd.io/etcd/server/v3|go.etcd.io/etcd/server/v3"
  "kube-apiserver|k8s.io/kubernetes/cmd/kube-apiserver|k8s.io/kubernetes"
  "kube-controller-manager|k8s.io/kubernetes/cmd/kube-controller-manager|k8s.io/kubernetes"
  "kube-scheduler|k8s.io/kubernetes/cmd/kube-scheduler|k8s.io/kubernetes"
  "kubectl|k8s.io/kubernetes/cmd/kubectl|k8s.io/kubernetes"
  "kwok|sigs.k8s.io/kwok/cmd/kwok|sigs.k8s.io/kwok"
  # Its own module (tools/metrics-server/go.mod): it needs the Kubernetes
  # libraries it was released with, older than the control plane's.
  "metrics-server|sigs.k8s.io/metrics-server/cmd/metrics-server|sigs.k8s.io/metrics-server|tools/metrics-server"
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

# Prints a line every 30s while a long build runs, so a cold build (about
# 15 minutes on two cores) never looks hung.
heartbeat() { # label
  local label=$1 t0
  t0=$(date +%s)
  while sleep 30; do echo "    ... still building $label ($(( $(date +%s) - t0 ))s)" >&2; done
}

# build_group builds several programs in one `go build`, so that linking one
# overlaps compiling the next and shared packages are compiled once.
build_group() { # ldflags name|pkg ...
  local ldflags=$1; shift
  local names=() pkgs=() tmp start hb
  for e in "$@"; do names+=("${e%%|*}"); pkgs+=("${e#*|}"); done
  tmp=$(mktemp -d "$bin/.build.XXXXXX")
  start=$(date +%s)
  heartbeat "${names[*]}" & hb=$!
  # One program gets its own name (etcd's package would be named "v3"); several
  # are named after their package directories, which match their names.
  local out="$tmp/"
  [[ ${#names[@]} -eq 1 ]] && out="$tmp/${names[0]}"
  if ! go build -ldflags "$ldflags" -o "$out" "${pkgs[@]}"; then
    kill "$hb" 2>/dev/null || true; rm -rf "$tmp"; return 1
  fi
  kill "$hb" 2>/dev/null || true; wait "$hb" 2>/dev/null || true
  for n in "${names[@]}"; do mv "$tmp/$n" "$bin/$n"; done
  rm -rf "$tmp"
  echo "    built ${names[*]} in $(( $(date +%s) - start ))s" >&2
}

i=0
k8s_group=()
for entry in "${programs[@]}"; do
  i=$((i + 1))
  IFS='|' read -r name pkg mod dir <<<"$entry"
  if [[ -n "$dir" ]]; then
    # A program with its own module is built on its own, there.
    want=$(cd "$root/$dir" && go list -m -f '{{.Version}}' "$mod")
    have=$(embedded_version "$bin/$name" "$mod" || true)
    if [[ "$have" == "$want" ]]; then
      echo "[$i/$total] $name $want: up to date" >&2
      continue
    fi
    echo "[$i/$total] $name $want: building (was: ${have:-missing}) ..." >&2
    (cd "$root/$dir" && build_group "-s -w" "$name|$pkg")
    continue
  fi
  want=$(go list -m -f '{{.Version}}' "$mod")
  have=$(embedded_version "$bin/$name" "$mod" || true)
  if [[ "$have" == "$want" ]]; then
    echo "[$i/$total] $name $want: up to date" >&2
    continue
  fi
  echo "[$i/$total] $name $want: building (was: ${have:-missing}) ..." >&2
  if [[ "$mod" == "k8s.io/kubernetes" ]]; then
    # Built together once every Kubernetes program has been seen.
    k8s_group+=("$name|$pkg")
    continue
  fi
  build_group "-s -w" "$name|$pkg"
done
if [[ ${#k8s_group[@]} -gt 0 ]]; then
  echo "building the Kubernetes programs together (the longest step on a cold machine) ..." >&2
  build_group "$k8s_ldflags" "${k8s_group[@]}"
fi
