#!/usr/bin/env bash
# Storage throughput through /storage/v1 against a plain file copy on the same disk, in one run
# (BENCHMARKS.md, "Storage").
#
#   bench/storage.sh [count of 1 MiB objects] [rounds of 100 MiB objects]
#
# Starts the release binary with a throwaway data directory (the file backend under it, so the
# objects and the plain copies share a disk) and FILE_SIZE_LIMIT raised to 2 GiB, creates a bucket
# with the service_role key, then measures:
#   1 MiB:   COUNT uploads (POST, raw body) and COUNT downloads, one connection sequentially and
#            8 connections at once (curl --parallel); against COUNT `dd conv=fsync` copies of the
#            same file (storage syncs each object and its folders before its row; see README).
#   100 MiB: ROUNDS uploads and downloads, against ROUNDS `dd conv=fsync` copies and `cat` reads.
#   Reads on both sides come from the page cache (the files were just written).
#   1 GiB:   one streamed upload (chunked, from /dev/zero), craftbase's VmRSS sampled every 100 ms
#            from /proc: before, highest during, after.
# CPU from /proc: craftbase's own process (utime+stime, all threads) per MiB moved. curl and dd
# run on the same machine and share its CPUs.
#
# Environment: CRAFTBASE_BIN (default target/release/craftbase), PORT / DB_PORT (free ports),
# STREAM_MIB (1024, the streamed upload's size), KEEP=1 keeps the data directory.
set -euo pipefail

COUNT=${1:-200}
ROUNDS=${2:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CRAFTBASE_BIN:-$ROOT/target/release/craftbase}
PORT=${PORT:-$((20000 + RANDOM % 20000))}
DB_PORT=${DB_PORT:-$((PORT + 1))}
DATA=$(mktemp -d /tmp/craftbase-storage-bench.XXXXXX)
TCK=$(getconf CLK_TCK)
STREAM_MIB=${STREAM_MIB:-1024}

# shellcheck source=bench/craftbase.sh
source "$ROOT/bench/craftbase.sh"
require_tools curl jq dd "apt-get install -y curl jq coreutils"

cleanup() {
    if [[ -n "${SAMPLER:-}" ]]; then kill "$SAMPLER" 2>/dev/null || true; fi
    stop_craftbase
    if [[ -z "${KEEP:-}" ]]; then rm -rf "$DATA"; else echo "data directory kept: $DATA" >&2; fi
}
trap cleanup EXIT
trap "exit 130" INT TERM

mkdir -p "$DATA/project" "$DATA/copies"
FILE_SIZE_LIMIT=$((2 * 1024 * 1024 * 1024)) start_craftbase "$DATA/craftbase.log" \
    --project-dir "$DATA/project" --data-dir "$DATA/data" --db-port "$DB_PORT"
SERVICE=$("$BIN" status --json --data-dir "$DATA/data" | jq -r .service_role_key)
API="http://127.0.0.1:$PORT/storage/v1"
AUTH=(-H "apikey: $SERVICE" -H "Authorization: Bearer $SERVICE")
curl -fsS "${AUTH[@]}" -H 'content-type: application/json' "$API/bucket" \
    -d '{"id":"bench","name":"bench","public":false}' >/dev/null

head -c $((1024 * 1024)) /dev/urandom >"$DATA/one.bin"
head -c $((100 * 1024 * 1024)) /dev/urandom >"$DATA/hundred.bin"

ticks() { awk '{print $14 + $15}' "/proc/$CB/stat"; }
now() { date +%s.%N; }
# MiB/s, and craftbase's CPU ms per MiB, for $1 MiB moved between $2 and $3 with $4 ticks used.
rate() { awk -v m="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.1f", m / (b - a) }'; }
cpu() { awk -v m="$1" -v t="$2" -v hz="$TCK" 'BEGIN { printf "%.2f", t / hz * 1000 / m }'; }

# One curl run over a config of COUNT transfers: $1 = upload|download, $2 = parallelism,
# $3 = file, $4 = name prefix, $5 = count.
transfers() {
    local kind=$1 par=$2 file=$3 prefix=$4 n=$5 cfg=$DATA/curl.cfg i
    : >"$cfg"
    for i in $(seq 1 "$n"); do
        if [[ $kind == upload ]]; then
            printf 'url = "%s/object/bench/%s/%d"\nupload-file = "%s"\nrequest = "POST"\noutput = "/dev/null"\n' \
                "$API" "$prefix" "$i" "$file" >>"$cfg"
        else
            printf 'url = "%s/object/bench/%s/%d"\noutput = "/dev/null"\n' "$API" "$prefix" "$i" >>"$cfg"
        fi
    done
    local parallel=()
    [[ $par -gt 1 ]] && parallel=(--parallel --parallel-max "$par")
    curl -fsS --no-progress-meter "${parallel[@]}" "${AUTH[@]}" -H 'content-type: application/octet-stream' -K "$cfg"
}

# Runs "$@" and prints "MiB/s, CPU ms/MiB" for $MIB MiB.
measure() {
    local t0 c0 t1 c1
    t0=$(now) c0=$(ticks)
    "$@"
    t1=$(now) c1=$(ticks)
    echo "$(rate "$MIB" "$t0" "$t1") MiB/s, craftbase CPU $(cpu "$MIB" $((c1 - c0))) ms/MiB"
}
plain_copies() {
    local i
    for i in $(seq 1 "$2"); do dd if="$1" of="$DATA/copies/$3-$i" bs=1M conv=fsync status=none; done
}
plain_reads() {
    local i
    for i in $(seq 1 "$1"); do cat "$DATA/copies/$2-$i" >/dev/null; done
}
# Runs "$@" and prints MiB/s for $MIB MiB.
measure_plain() {
    local t0 t1
    t0=$(now)
    "$@"
    t1=$(now)
    echo "$(rate "$MIB" "$t0" "$t1") MiB/s"
}

echo "craftbase $("$BIN" --version 2>/dev/null || true); $(nproc) CPUs (shared); $(df -h "$DATA" | awk 'NR==2 {print $1}') for objects and copies"
MIB=$COUNT
echo "1 MiB x $COUNT"
echo "  upload, 1 connection:    $(measure transfers upload 1 "$DATA/one.bin" seq "$COUNT")"
echo "  upload, 8 connections:   $(measure transfers upload 8 "$DATA/one.bin" par "$COUNT")"
echo "  download, 1 connection:  $(measure transfers download 1 "" seq "$COUNT")"
echo "  download, 8 connections: $(measure transfers download 8 "" par "$COUNT")"
echo "  plain dd conv=fsync:     $(measure_plain plain_copies "$DATA/one.bin" "$COUNT" one)"
echo "  plain cat (read):        $(measure_plain plain_reads "$COUNT" one)"
MIB=$((100 * ROUNDS))
echo "100 MiB x $ROUNDS"
echo "  upload:                  $(measure transfers upload 1 "$DATA/hundred.bin" big "$ROUNDS")"
echo "  download:                $(measure transfers download 1 "" big "$ROUNDS")"
echo "  plain dd conv=fsync:     $(measure_plain plain_copies "$DATA/hundred.bin" "$ROUNDS" hundred)"
echo "  plain cat (read):        $(measure_plain plain_reads "$ROUNDS" hundred)"

rss() { awk '/^VmRSS/ {print $2}' "/proc/$CB/status"; }
sleep 2
BASE=$(rss)
(while true; do rss; sleep 0.1; done) >"$DATA/rss.log" &
SAMPLER=$!
MIB=$STREAM_MIB
GIB=$(measure sh -c "head -c $((STREAM_MIB * 1024 * 1024)) /dev/zero | curl -fsS -T - -X POST \
    -H 'apikey: $SERVICE' -H 'Authorization: Bearer $SERVICE' \
    -H 'content-type: application/octet-stream' '$API/object/bench/gib' -o /dev/null")
kill "$SAMPLER"; wait "$SAMPLER" 2>/dev/null || true; SAMPLER=
sleep 2
MAX=$(sort -n "$DATA/rss.log" | tail -1)
echo "$STREAM_MIB MiB streamed upload: $GIB"
echo "  craftbase VmRSS: before $((BASE / 1024)) MiB, highest during $((MAX / 1024)) MiB (+$(((MAX - BASE) / 1024)) MiB), after $(($(rss) / 1024)) MiB ($(wc -l <"$DATA/rss.log") samples)"
