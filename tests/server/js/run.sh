#!/usr/bin/env bash
# Runs the OpenAI JavaScript client tests against a real `dsv3 serve` on loopback.
# Usage: tests/server/js/run.sh path/to/dsv3
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
dsv3="${1:?usage: run.sh path/to/dsv3}"

# The client library, pinned by package-lock.json.
if [[ ! -d "$here/node_modules/openai" ]]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# A small random-weight model of the V3 architecture with the real tokenizer.
"$dsv3" make-random --config "$root/tests/data/small-chat-config.json" --out "$work/model" --seed 7 \
  --tokenizer "$root/assets/deepseek-v3-tokenizer" >/dev/null

key="js-test-key"
"$dsv3" serve --model "$work/model" --port 0 --api-key "$key" --ctx 1024 -t 2 >"$work/serve.log" 2>&1 &
server_pid=$!
url=""
for _ in $(seq 1 200); do
  if grep -q "ready:" "$work/serve.log"; then
    url="$(grep -o 'http://[0-9.]*:[0-9]*' "$work/serve.log" | head -1)"
    break
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then cat "$work/serve.log"; exit 1; fi
  sleep 0.1
done
[[ -n "$url" ]] || { echo "server did not become ready"; cat "$work/serve.log"; exit 1; }

status=0
DSV3_URL="$url" DSV3_API_KEY="$key" node --test --test-reporter=spec "$here"/*.test.mjs || status=$?

# SIGTERM drains and exits 0.
kill -TERM "$server_pid"
if ! wait "$server_pid"; then echo "dsv3 serve did not exit cleanly on SIGTERM"; cat "$work/serve.log"; status=1; fi
server_pid=""
exit $status
