#!/usr/bin/env bash
# Runs the OpenAI JavaScript client tests against a real `dsv3 serve` on loopback.
# Usage: tests/server/js/run.sh path/to/dsv3
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
dsv3="${1:?usage: run.sh path/to/dsv3}"

source "$here/common.sh"
install_client

work="$(mktemp -d)"
server_pid=""
r1_pid=""
cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then kill -KILL "$server_pid" 2>/dev/null || true; fi
  if [[ -n "$r1_pid" ]] && kill -0 "$r1_pid" 2>/dev/null; then kill -KILL "$r1_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# A small random-weight model of the V3 architecture with the real tokenizer.
"$dsv3" make-random --config "$root/tests/data/small-chat-config.json" --out "$work/model" --seed 7 \
  --tokenizer "$root/assets/deepseek-v3-tokenizer" >/dev/null

# The same weights with an R1-style chat template (the generation prompt ends in "<think>\n"),
# for reasoning_content: the real tokenizer.json with tests/fixtures/tokenizer/r1-style's config.
mkdir -p "$work/r1-tokenizer"
cp "$root/assets/deepseek-v3-tokenizer/tokenizer.json" "$work/r1-tokenizer/"
cp "$root/tests/fixtures/tokenizer/r1-style/tokenizer_config.json" "$work/r1-tokenizer/"

key="js-test-key"
"$dsv3" serve --model "$work/model" --port 0 --api-key "$key" --ctx 1024 -t 2 >"$work/serve.log" 2>&1 &
server_pid=$!
"$dsv3" serve --model "$work/model" --tokenizer "$work/r1-tokenizer" --port 0 --api-key "$key" --ctx 1024 -t 1 \
  >"$work/serve-r1.log" 2>&1 &
r1_pid=$!
url="$(wait_ready "$work/serve.log" "$server_pid" 200)" || exit 1
r1_url="$(wait_ready "$work/serve-r1.log" "$r1_pid" 200)" || exit 1

status=0
DSV3_URL="$url" DSV3_R1_URL="$r1_url" DSV3_API_KEY="$key" node --test --test-reporter=spec "$here"/*.test.mjs || status=$?
kill -TERM "$r1_pid"; wait "$r1_pid" || true; r1_pid=""

# SIGTERM drains and exits 0.
kill -TERM "$server_pid"
if ! wait "$server_pid"; then echo "dsv3 serve did not exit cleanly on SIGTERM"; cat "$work/serve.log"; status=1; fi
server_pid=""
exit $status
