#!/usr/bin/env bash
# Stop the local Ray cluster started by start_local.sh. Note: `ray stop` ends every Ray process of this
# user on this machine (also other local clusters); pass --force to SIGKILL stragglers.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$here/.venv}"
export RAY_AUTH_MODE=token
"$VENV/bin/ray" stop "$@"
