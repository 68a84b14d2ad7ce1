#!/usr/bin/env bash
# make demo: the main job, end to end, on the local stack that `make up`
# started. It submits an agent job with the CLI, shows what the webhook
# changed, follows it to the end with its logs, lists the jobs, lets TTL
# cleanup (the FlowForge controller, after the export) delete the Job, and
# reads the job back from the execution history.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export KUBECONFIG=$root/.local/kubeconfig
# The CLI as a kubectl plugin (`make build` writes bin/kubectl-flowforge):
# kubectl finds it on PATH and passes $KUBECONFIG on.
export PATH=$root/bin:$PATH
ff() { kubectl flowforge "$@"; }
k() { bin/kubectl --kubeconfig "$KUBECONFIG" "$@"; }
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

id=demo-$(date +%H%M%S)
step "1. Credentials for job $id (the worker reads them from Secrets)"
k -n flowforge-jobs create secret generic "git-credentials-$id" --from-literal=credentials=local-placeholder

step "2. Submit the job; the webhook hardens it (diff: rendered vs admitted)"
ff submit --id "$id" --user alice --repository acme/widgets \
  --repository-url https://github.com/acme/widgets.git --branch "fix-$id" \
  --task 'Make the parser skip empty lines, add a test, push the branch.' \
  --timeout 20m --profile small \
  --pod-annotation 'sim.flowforge.io/logs=cloning acme/widgets
reading the task
editing parser.go and parser_test.go
running go test ./... : ok
pushed branch fix-'"$id" \
  --pod-annotation sim.flowforge.io/log-interval=600ms \
  --pod-annotation sim.flowforge.io/duration=4s \
  --diff

step "3. Follow its status and logs to completion"
ff watch --logs "$id"

step "4. Status, and the jobs in the namespace"
ff status "$id"
echo
ff list

step "5. TTL cleanup: FlowForge deletes the Job once exported and past its TTL; shorten the TTL"
k -n flowforge-jobs annotate job "claude-job-$id" --overwrite flowforge.io/ttl-seconds-after-finished=2
for _ in $(seq 1 120); do
  k -n flowforge-jobs get job "claude-job-$id" >/dev/null 2>&1 || break
  sleep 0.5
done
if k -n flowforge-jobs get job "claude-job-$id" >/dev/null 2>&1; then
  echo "the Job was not deleted" >&2; exit 1
fi
echo "Job claude-job-$id is gone from the cluster."

step "6. The execution history outlives the Job"
ff history --user alice
echo
ff status "$id"
echo
echo "Archived logs:"
ff logs "$id"

step "7. What the policy refuses (offline check, no cluster needed)"
if bin/flowforge policy apply -f examples/escape-job.yaml >/dev/null; then
  echo "the escape was admitted" >&2; exit 1
fi
echo
echo "Demo complete. The stack keeps running: make down stops it."
