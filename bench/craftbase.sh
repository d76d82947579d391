# Sourced by the shell benchmarks: what each needs to run a craftbase process of its own.
#   require_tools TOOL... HINT     stop unless every tool is on the PATH (HINT: how to install them)
#   start_craftbase LOG ARGS...    `$BIN start ARGS...` in the background (its pid in CB), its
#                                  output in LOG; returns once /health on $PORT answers
#   stop_craftbase                 SIGTERM and wait; for the caller's EXIT trap
# Expects BIN and PORT to be set.

require_tools() {
    local hint=${*: -1}
    for tool in "${@:1:$#-1}"; do
        command -v "$tool" >/dev/null || { echo "needs $tool ($hint)" >&2; exit 1; }
    done
}

start_craftbase() {
    local log=$1
    shift
    "$BIN" start --port "$PORT" "$@" >"$log" 2>&1 &
    CB=$!
    for _ in $(seq 1 240); do
        curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && return 0
        kill -0 "$CB" 2>/dev/null || { cat "$log" >&2; exit 1; }
        sleep 0.5
    done
    echo "craftbase did not answer /health within 2 minutes" >&2
    exit 1
}

stop_craftbase() {
    if [[ -n "${CB:-}" ]] && kill -0 "$CB" 2>/dev/null; then
        kill -TERM "$CB"
        wait "$CB" 2>/dev/null || true
    fi
}
