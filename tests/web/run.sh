#!/usr/bin/env bash
# Runs the chat page's browser tests: headless Chromium (Debian's chromium) driven by the pinned
# puppeteer-core, against a real `dsv3 serve` on a random-weight model, with an API key.
# Usage: tests/web/run.sh path/to/dsv3
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dsv3="${1:?usage: run.sh path/to/dsv3}"

chromium="$(command -v chromium || true)"
[[ -n "$chromium" ]] || { echo "chromium is not installed (scripts/install-deps.sh --test installs it)"; exit 1; }
# The driver, pinned by package-lock.json.
if [[ ! -d "$here/node_modules/puppeteer-core" ]]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# A small random-weight model of the V3 architecture with the real tokenizer. Its context is
# long enough that an answer is still streaming when the test presses Stop.
"$dsv3" make-random --config "$root/tests/data/small-chat-config.json" --out "$work/model" --seed 7 \
  --tokenizer "$root/assets/deepseek-v3-tokenizer" >/dev/null

key="web-test-key"
"$dsv3" serve --model "$work/model" --port 0 --api-key "$key" --ctx 8192 -t 2 >"$work/serve.log" 2>&1 &
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
DSV3_URL="$url" DSV3_API_KEY="$key" CHROMIUM="$chromium" node --test --test-concurrency=1 --test-reporter=spec \
  "$here"/*.test.mjs || status=$?

kill -TERM "$server_pid"
wait "$server_pid" || true
server_pid=""
exit $status
