#!/usr/bin/env bash
# dsv3 serve under `mpirun -np 2` against one process, through the OpenAI JavaScript client
# (mpi_parity.mjs). Skipped (exit 0 with a note) where mpirun is missing.
# Usage: tests/server/js/run-mpi.sh path/to/dsv3
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
dsv3="${1:?usage: run-mpi.sh path/to/dsv3}"
if ! command -v mpirun >/dev/null; then echo "mpirun not installed (openmpi-bin): skipped"; exit 0; fi

source "$here/common.sh"
install_client

work="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

"$dsv3" make-random --config "$root/tests/data/small-chat-config.json" --out "$work/model" --seed 11 \
  --tokenizer "$root/assets/deepseek-v3-tokenizer" >/dev/null

key="js-mpi-key"
serve=(serve --model "$work/model" --port 0 --api-key "$key" --ctx 512 -t 1 --max-step-tokens 32)
# Each server in its own process group, so that cleanup ends mpirun and its ranks together.
setsid "$dsv3" "${serve[@]}" >"$work/one.log" 2>&1 &
pids+=($!)
setsid mpirun --oversubscribe --allow-run-as-root --bind-to none --mca btl tcp,self -np 2 \
  "$dsv3" "${serve[@]}" >"$work/two.log" 2>&1 &
pids+=($!)
disown -a  # cleanup's kills are expected: no job reports
url="$(wait_ready "$work/one.log" "${pids[0]}" 600)" || exit 1
mpi_url="$(wait_ready "$work/two.log" "${pids[1]}" 600)" || exit 1

status=0
DSV3_URL="$url" DSV3_MPI_URL="$mpi_url" DSV3_API_KEY="$key" node --test --test-reporter=spec "$here/mpi_parity.mjs" || status=$?
if [[ $status -ne 0 ]]; then echo "== one process"; tail -20 "$work/one.log"; echo "== two ranks"; tail -20 "$work/two.log"; fi
exit $status
