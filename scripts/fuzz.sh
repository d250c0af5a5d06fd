#!/usr/bin/env bash
# Runs every libFuzzer harness built in $1 (a build directory configured with -DDSV3_FUZZ=ON)
# for $2 seconds each, starting from the seed corpus in fuzz/corpus/<harness> and replaying
# the inputs of fixed bugs in fuzz/regressions/<harness> first. New corpus entries go to
# <build>/fuzz-corpus/<harness> (the seeds in the repository are never written), crashes to
# <build>/fuzz-artifacts/. Limits: 1 s per input (-timeout), 2 GB of memory (-rss_limit_mb).
# Prints one line per harness: executions, new corpus entries, result. Exits non-zero when a
# harness found a crash, a hang or an out-of-memory.
set -euo pipefail
build=${1:?usage: scripts/fuzz.sh BUILD_DIR SECONDS [HARNESS...]}
seconds=${2:?usage: scripts/fuzz.sh BUILD_DIR SECONDS [HARNESS...]}
shift 2
root=$(cd "$(dirname "$0")/.." && pwd)
harnesses=("$@")
if [ ${#harnesses[@]} -eq 0 ]; then
  harnesses=(fuzz_safetensors_header fuzz_checkpoint_index fuzz_model_config fuzz_tokenizer_json fuzz_bpe
             fuzz_chat_template fuzz_openai_request fuzz_http)
fi
mkdir -p "$build/fuzz-artifacts"
failed=0
for h in "${harnesses[@]}"; do
  bin="$build/fuzz/$h"
  work="$build/fuzz-corpus/$h"
  log="$build/fuzz-artifacts/$h.log"
  mkdir -p "$work"
  regressions=()
  if [ -d "$root/fuzz/regressions/$h" ]; then
    mapfile -t regressions < <(find "$root/fuzz/regressions/$h" -type f | sort)
  fi
  status=ok
  if [ ${#regressions[@]} -gt 0 ] && ! "$bin" -timeout=1 -rss_limit_mb=2048 "${regressions[@]}" >"$log.regressions" 2>&1; then
    status="REGRESSION (see $log.regressions)"
  fi
  if [ "$status" = ok ] && ! "$bin" -max_total_time="$seconds" -timeout=1 -rss_limit_mb=2048 -max_len=65536 \
        -artifact_prefix="$build/fuzz-artifacts/$h-" -print_final_stats=1 "$work" "$root/fuzz/corpus/$h" >"$log" 2>&1; then
    status="FAILED (see $log and $build/fuzz-artifacts/$h-*)"
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" 2>/dev/null | grep -o '[0-9]*$' || echo "?")
  printf '%-26s %10s executions in %ss, %3d regression inputs, %s\n' "$h" "${runs:-?}" "$seconds" "${#regressions[@]}" "$status"
  [ "$status" = ok ] || failed=1
done
exit $failed
