#!/usr/bin/env bash
# make up / make down: run the local stack (bin/localup) in the background.
#   up.sh start   start it unless it runs; wait until it is ready
#   up.sh stop    stop it and make sure no process is left behind
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
state=$root/.local
pidfile=$state/localup.pid
log=$state/localup.log

running() { [[ -f $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

start() {
  mkdir -p "$state"
  if running && [[ -f $state/ready ]]; then
    echo "The local stack is already running (pid $(cat "$pidfile")); kubeconfig: .local/kubeconfig"
    return 0
  fi
  running && stop
  args=(--state-dir "$state" --bin-dir "$root/bin")
  [[ -n "${FLOWFORGE_POLICY_DIR:-}" ]] && args+=(--policy-dir "$FLOWFORGE_POLICY_DIR")
  [[ -n "${CERT_VALIDITY:-}" ]] && args+=(--cert-validity "$CERT_VALIDITY")
  nohup "$root/bin/localup" "${args[@]}" >"$log" 2>&1 &
  echo $! >"$pidfile"
  echo "Starting the local stack (pid $!; log: .local/localup.log) ..."
  for _ in $(seq 1 240); do
    if [[ -f $state/ready ]]; then
      sed -n 's/^localup: //p' "$log" | sed 's/^/  /'
      echo
      echo "Ready. Try:"
      echo "  bin/kubectl --kubeconfig .local/kubeconfig get nodes"
      echo "  bin/flowforge --kubeconfig .local/kubeconfig list"
      echo "Endpoints: .local/endpoints.env. Stop with: make down"
      return 0
    fi
    if ! running; then
      echo "The local stack failed to start:" >&2
      tail -n 40 "$log" >&2
      rm -f "$pidfile"
      return 1
    fi
    sleep 0.5
  done
  echo "The local stack did not become ready in 120s; see .local/localup.log" >&2
  return 1
}

stop() {
  if [[ ! -f $pidfile ]]; then
    echo "The local stack is not running."
    return 0
  fi
  pid=$(cat "$pidfile")
  # Components the stack started, in case the stack itself was killed.
  children=$(cat "$state/cluster/pids" 2>/dev/null || true)
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
  fi
  left=""
  for p in $children; do
    if kill -0 "$p" 2>/dev/null; then kill -KILL "$p" 2>/dev/null || true; left="$left $p"; fi
  done
  [[ -n "$left" ]] && echo "Killed leftover processes:$left"
  rm -f "$pidfile" "$state/ready"
  echo "The local stack is stopped; no process is left."
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
