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
pids=()
cleanup() {
  for pid in "${pids[@]+"${pids[@]}"}"; do kill -KILL "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# A small random-weight model of the V3 architecture with the real tokenizer. Its context is
# long enough that an answer is still streaming when the test presses Stop.
"$dsv3" make-random --config "$root/tests/data/small-chat-config.json" --out "$work/model" --seed 7 \
  --tokenizer "$root/assets/deepseek-v3-tokenizer" >/dev/null

# The same weights as a reasoning model: the V3 tokenizer with an R1-style chat template
# (tests/fixtures/tokenizer/r1-style), whose generation prompt opens a think block, so the
# answer streams as reasoning_content until </think>.
mkdir "$work/tokenizer-r1"
cp "$root/assets/deepseek-v3-tokenizer/tokenizer.json" "$root/tests/fixtures/tokenizer/r1-style/tokenizer_config.json" \
  "$work/tokenizer-r1/"

key="web-test-key"
# start_server NAME [ARGS...]: sets server_url once the server is ready.
start_server() {
  local name="$1"
  shift
  "$dsv3" serve --model "$work/model" "$@" --port 0 --api-key "$key" --ctx 8192 -t 1 >"$work/$name.log" 2>&1 &
  pids+=($!)
  for _ in $(seq 1 300); do
    if grep -q "ready:" "$work/$name.log"; then
      server_url="$(grep -o 'http://[0-9.]*:[0-9]*' "$work/$name.log" | head -1)"
      return 0
    fi
    if ! kill -0 "${pids[-1]}" 2>/dev/null; then break; fi
    sleep 0.1
  done
  echo "$name: server did not become ready" >&2; cat "$work/$name.log" >&2; return 1
}
start_server plain
url="$server_url"
start_server r1 --tokenizer "$work/tokenizer-r1"
reasoning_url="$server_url"

status=0
DSV3_URL="$url" DSV3_REASONING_URL="$reasoning_url" DSV3_API_KEY="$key" CHROMIUM="$chromium" node --test --test-concurrency=1 --test-reporter=spec \
  "$here"/*.test.mjs || status=$?

for pid in "${pids[@]}"; do kill -TERM "$pid"; wait "$pid" || true; done
pids=()
exit $status
