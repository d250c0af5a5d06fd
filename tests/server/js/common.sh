# Shared by run.sh and run-mpi.sh (sourced): the pinned client packages, and waiting for a
# `dsv3 serve` to say it is ready.

# The client library and the validator, pinned by package-lock.json, installed when missing.
install_client() {
  if [[ ! -d "$here/node_modules/openai" || ! -d "$here/node_modules/ajv" ]]; then
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# wait_ready LOG PID TRIES: prints the server's URL once LOG says "ready:", checking every
# 0.1 s up to TRIES times; fails (printing the log) when PID ends or the time runs out.
wait_ready() {
  for _ in $(seq 1 "$3"); do
    if grep -q "ready:" "$1"; then grep -o 'http://[0-9.]*:[0-9]*' "$1" | head -1; return 0; fi
    if ! kill -0 "$2" 2>/dev/null; then cat "$1" >&2; return 1; fi
    sleep 0.1
  done
  echo "server did not become ready" >&2; cat "$1" >&2; return 1
}
