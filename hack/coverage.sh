#!/usr/bin/env bash
# Prints per-package and total statement coverage of a Go cover profile and
# fails when the total is below the minimum.
set -euo pipefail
profile=$1
min=$2
total=$(go tool cover -func="$profile" | awk '/^total:/ {sub("%","",$3); print $3}')
# Per-package summary, from the profile itself (statements covered / total).
awk -F'[: ,]' 'NR>1 {
  pkg=$1; sub(/\/[^\/]*$/, "", pkg)
  stmts[pkg]+=$(NF-1); if ($NF>0) hit[pkg]+=$(NF-1)
} END { for (p in stmts) printf "  %-60s %5.1f%%\n", p, 100*hit[p]/stmts[p] }' "$profile" | sort
echo "unit-test coverage: ${total}% (minimum ${min}%)"
awk -v t="$total" -v m="$min" 'BEGIN { exit !(t+0 >= m+0) }' || { echo "FAIL: coverage ${total}% is below ${min}%"; exit 1; }
