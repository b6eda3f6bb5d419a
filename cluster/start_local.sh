#!/usr/bin/env bash
# Start a single-node Ray cluster on this machine for `ray job submit` (dashboard/job API on 127.0.0.1).
# Env: VENV (default <repo>/.venv), NUM_CPUS (default: all), NUM_GPUS (default: Ray detects),
#      DASHBOARD_PORT (8265), RAY_PORT (6379), RAY_TEMP_DIR (Ray's default /tmp/ray). Extra args go to `ray start`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$here/.venv}"
RAY="$VENV/bin/ray"
DASHBOARD_PORT="${DASHBOARD_PORT:-8265}"

# Ray >= 2.60 uses token auth: the token lives in ~/.ray/auth_token (made here once); every client
# (`ray job submit`, `ray status`) needs RAY_AUTH_MODE=token in its environment to send it.
export RAY_AUTH_MODE=token
"$RAY" get-auth-token --generate >/dev/null

args=(--head --dashboard-host=127.0.0.1 --dashboard-port="$DASHBOARD_PORT" --port="${RAY_PORT:-6379}")
args+=(--include-dashboard=true --disable-usage-stats)
[[ -n "${NUM_CPUS:-}" ]] && args+=(--num-cpus="$NUM_CPUS")
[[ -n "${NUM_GPUS:-}" ]] && args+=(--num-gpus="$NUM_GPUS")
[[ -n "${RAY_TEMP_DIR:-}" ]] && args+=(--temp-dir="$RAY_TEMP_DIR")
"$RAY" start "${args[@]}" "$@"

cat <<MSG

Ray is up. Submit a job from the repository root:
  export RAY_AUTH_MODE=token
  $RAY job submit --address http://127.0.0.1:$DASHBOARD_PORT --working-dir . -- \\
      $VENV/bin/python jobs/sft.py --config jobs/configs/sft_tiny_cpu.yaml
Stop it with cluster/stop_local.sh.
MSG
