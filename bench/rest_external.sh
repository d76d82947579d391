#!/usr/bin/env bash
# PostgreSQL's CPU per REST request behind the running craftbase binary, against the same
# transaction sent straight to PostgreSQL, in one run (BENCHMARKS.md, "REST gateway, external").
#
#   bench/rest_external.sh [seconds per phase] [rounds]
#
# Starts the release binary on the example project with a throwaway data directory, signs a user
# up, seeds 10,000 jobs of two users, then alternates, once per round:
#   gateway: wrk, GET /rest/v1/pipeline_jobs?id=eq.<uuid> as that user (apikey + Bearer token),
#            under the app's RLS;
#   direct:  pgbench -M prepared, pipelined, as `authenticator` over the cluster's socket, the
#            transaction the gateway sends for that request: BEGIN READ ONLY; the same
#            set_config (the same values, the token's claims, the request's headers as JSON);
#            the same SELECT; COMMIT.
# CPU from /proc: craftbase's own process (utime+stime, all threads) and the cluster (the
# postmaster, its children, and children it reaped during the phase), per request.
#
# Environment: CRAFTBASE_BIN (default target/release/craftbase), CONNECTIONS (50), THREADS (2,
# wrk's and pgbench's), PORT / DB_PORT (free ports), POOL (craftbase --pool-size, default its own),
# KEEP=1 keeps the data directory, QUIET=<percent> waits (up to 10 minutes) before each round
# until the CPUs were at least that idle for 3 seconds (other work on the machine skews both sides).
set -euo pipefail

SECS=${1:-10}
ROUNDS=${2:-3}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-2}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BIN=${CRAFTBASE_BIN:-$ROOT/target/release/craftbase}
PORT=${PORT:-$((20000 + RANDOM % 20000))}
DB_PORT=${DB_PORT:-$((PORT + 1))}
DATA=$(mktemp -d /tmp/craftbase-rest-bench.XXXXXX)
TCK=$(getconf CLK_TCK)

# shellcheck source=bench/craftbase.sh
source "$ROOT/bench/craftbase.sh"
require_tools wrk pgbench psql jq curl "apt-get install -y wrk postgresql-client jq curl"

cleanup() {
    stop_craftbase
    if [[ -z "${KEEP:-}" ]]; then rm -rf "$DATA"; else echo "data directory kept: $DATA" >&2; fi
}
trap cleanup EXIT
trap "exit 130" INT TERM

pool_flag=()
[[ -n "${POOL:-}" ]] && pool_flag=(--pool-size "$POOL")
start_craftbase "$DATA/craftbase.log" --project-dir "$ROOT/examples/tool-connect-craft" \
    --data-dir "$DATA" --db-port "$DB_PORT" "${pool_flag[@]}"
STATUS=$("$BIN" status --json --data-dir "$DATA")
ANON=$(jq -r .anon_key <<<"$STATUS")
DB_URL=$(jq -r .db_url <<<"$STATUS")
API="http://127.0.0.1:$PORT"

# A user, signed up through auth like any client; their access token is a real session's.
signup() {
    curl -fsS "$API/auth/v1/signup" -H "apikey: $ANON" -H 'content-type: application/json' \
        -d "{\"email\":\"$1\",\"password\":\"bench-password-123\"}"
}
USER_JSON=$(signup load@example.com)
TOKEN=$(jq -r '.access_token // empty' <<<"$USER_JSON")
if [[ -z "$TOKEN" ]]; then
    TOKEN=$(curl -fsS "$API/auth/v1/token?grant_type=password" -H "apikey: $ANON" \
        -H 'content-type: application/json' \
        -d '{"email":"load@example.com","password":"bench-password-123"}' | jq -r .access_token)
fi
USER_ID=$(psql "$DB_URL" -qAtc "select id from auth.users where email = 'load@example.com'")
signup other@example.com >/dev/null
OTHER_ID=$(psql "$DB_URL" -qAtc "select id from auth.users where email = 'other@example.com'")

psql "$DB_URL" -q -v ON_ERROR_STOP=1 <<SQL
insert into public.pipeline_jobs (user_id, connector_id, type, status, input, created_at)
select case when g % 2 = 0 then '$USER_ID'::uuid else '$OTHER_ID'::uuid end,
       (select id from public.connectors order by slug limit 1 offset g % 8),
       'tool_execution',
       (array['queued','running','succeeded','failed'])[1 + g % 4]::public.job_status,
       jsonb_build_object('n', g),
       now() - g * interval '1 minute'
from generate_series(1, 10000) g;
analyze public.pipeline_jobs;
SQL
JOB=$(psql "$DB_URL" -qAtc "select id from public.pipeline_jobs where user_id = '$USER_ID' order by created_at limit 1")
URL="$API/rest/v1/pipeline_jobs?id=eq.$JOB"
BODY=$(curl -fsS "$URL" -H "apikey: $ANON" -H "Authorization: Bearer $TOKEN")
[[ $(jq length <<<"$BODY") == 1 ]] || { echo "the user cannot read their job: $BODY" >&2; exit 1; }

POSTMASTER=$(head -1 "$(psql "$DB_URL" -qAtc "show data_directory")/postmaster.pid")
SOCKET=$(psql "$DB_URL" -qAtc "select setting from pg_settings where name = 'unix_socket_directories'" | cut -d, -f1)

# The transaction the gateway sends for this request, with the values it sends: the token's
# claims, the headers wrk sends as JSON (sorted names, as the gateway serialises them), the
# search path (the schema and PGRST_DB_EXTRA_SEARCH_PATH's default, `extensions`).
CLAIMS=$(cut -d. -f2 <<<"$TOKEN" | tr '_-' '/+' | awk '{ while (length($0) % 4) $0 = $0 "="; print }' | base64 -d | jq -c .)
HEADERS=$(jq -cn --arg host "127.0.0.1:$PORT" --arg apikey "$ANON" --arg auth "Bearer $TOKEN" \
    '{apikey: $apikey, authorization: $auth, host: $host}')
# The role's own settings (ALTER ROLE authenticated SET ...), which the gateway sets per request too.
ROLE_SETTINGS=$(psql "$DB_URL" -qAtc "select coalesce(json_object_agg(split_part(s, '=', 1), substr(s, strpos(s, '=') + 1)), '{}') from pg_db_role_setting, unnest(setconfig) s where setrole = 'authenticated'::regrole and setdatabase in (0, (select oid from pg_database where datname = current_database()))")
cat >"$DATA/direct.sql" <<'SQL'
\startpipeline
BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY;
select set_config('search_path', :search_path, true), set_config('role', :role, true), set_config('request.jwt.claims', :claims, true), set_config('request.method', :method, true), set_config('request.path', :path, true), set_config('request.headers', :headers, true), set_config('request.cookies', :cookies, true), (select count(set_config(key, value, true)) from json_each_text(:role_settings::json));
SELECT NULL::int8, count(*), coalesce(json_agg(_s), '[]')::text, current_setting('response.status', true), current_setting('response.headers', true) FROM (SELECT "t1".* FROM "public"."pipeline_jobs" AS "t1" WHERE ("t1"."id" = :id)) _s;
COMMIT;
\endpipeline
SQL
PGBENCH=(pgbench -n -h "$SOCKET" -p "$DB_PORT" -U authenticator -M prepared -c "$CONNECTIONS"
    -j "$THREADS" -T "$SECS" -f "$DATA/direct.sql"
    -D 'search_path="public", "extensions"' -D role=authenticated -D "claims=$CLAIMS" -D method=GET
    -D path=/pipeline_jobs -D "headers=$HEADERS" -D 'cookies={}' -D "role_settings=$ROLE_SETTINGS" -D "id=$JOB" postgres)

# CPU ticks: craftbase (all threads) and the cluster (postmaster + children + what it reaped, so
# backends that exited during the phase count too); craftbase's context switches (all threads).
# PostgreSQL's context switches are not summed: backends that exit take theirs along.
sample() {
    local cb pg vol invol
    cb=$(awk '{print $14 + $15}' "/proc/$CB/stat")
    pg=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$POSTMASTER/stat")
    for child in $(ps --ppid "$POSTMASTER" -o pid= 2>/dev/null); do
        pg=$((pg + $(awk '{print $14 + $15}' "/proc/$child/stat" 2>/dev/null || echo 0)))
    done
    vol=0 invol=0
    for status in /proc/"$CB"/task/*/status; do
        read -r v i < <(awk '/^voluntary_ctxt/{v=$2} /^nonvoluntary_ctxt/{i=$2} END{print v, i}' "$status" 2>/dev/null || echo "0 0")
        vol=$((vol + v)) invol=$((invol + i))
    done
    echo "$cb $pg $((vol + invol))"
}

# Percent of CPU time idle over $1 seconds, from /proc/stat.
idle() {
    local a b
    read -ra a < <(head -1 /proc/stat)
    sleep "$1"
    read -ra b < <(head -1 /proc/stat)
    awk -v t=$(( (b[1]+b[2]+b[3]+b[4]+b[5]+b[6]+b[7]+b[8]) - (a[1]+a[2]+a[3]+a[4]+a[5]+a[6]+a[7]+a[8]) )) \
        -v i=$((b[4] - a[4])) 'BEGIN { printf "%.0f", 100 * i / t }'
}

us() { awk -v t="$1" -v n="$2" -v hz="$TCK" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }'; }

echo "craftbase $("$BIN" --version 2>/dev/null || true); PostgreSQL $(psql "$DB_URL" -qAtc 'show server_version'); $(nproc) CPUs"
echo "wrk -t$THREADS -c$CONNECTIONS -d${SECS}s; pgbench -c $CONNECTIONS -j $THREADS -T $SECS -M prepared (pipelined); $(date -u +%FT%TZ)"
echo
echo "| round | load avg (1 min) | idle before | gateway req/s | craftbase µs/req | PostgreSQL µs/req (gateway) | direct tx/s | PostgreSQL µs/req (direct) | PG gateway / direct | craftbase / PG gateway | craftbase ctx switches/req |"
echo "|---|---|---|---|---|---|---|---|---|---|---|"
sleep 2
for round in $(seq 1 "$ROUNDS"); do
    quiet=$(idle 3)
    if [[ -n "${QUIET:-}" ]]; then
        for _ in $(seq 1 200); do
            ((quiet >= QUIET)) && break
            quiet=$(idle 3)
        done
    fi
    load=$(cut -d' ' -f1 /proc/loadavg)
    read -r cb0 pg0 cs0 < <(sample)
    out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SECS}s" -H "apikey: $ANON" -H "Authorization: Bearer $TOKEN" "$URL")
    sleep 0.3
    read -r cb1 pg1 cs1 < <(sample)
    if grep -q "Non-2xx" <<<"$out"; then echo "gateway errors: $out" >&2; exit 1; fi
    reqs=$(awk '/requests in/ {print $1}' <<<"$out")
    rate=$(awk '/Requests\/sec/ {printf "%.0f", $2}' <<<"$out")

    read -r _ pg2 _ < <(sample)
    dout=$("${PGBENCH[@]}" 2>&1 || true)
    sleep 0.3
    read -r _ pg3 _ < <(sample)
    if grep -q "aborted" <<<"$dout" || ! grep -q "number of failed transactions: 0 " <<<"$dout"; then
        echo "pgbench failed: $dout" >&2
        exit 1
    fi
    txs=$(awk -F': ' '/actually processed/ {print $2}' <<<"$dout" | cut -d/ -f1)
    tps=$(awk '/^tps/ {printf "%.0f", $3}' <<<"$dout")

    gw_pg=$(us $((pg1 - pg0)) "$reqs")
    dir_pg=$(us $((pg3 - pg2)) "$txs")
    cb_us=$(us $((cb1 - cb0)) "$reqs")
    per() { awk -v d="$1" -v n="$2" 'BEGIN { printf "%.2f", d / n }'; }
    cs=$(per $((cs1 - cs0)) "$reqs")
    echo "| $round | $load | $quiet% | $rate | $cb_us | $gw_pg | $tps | $dir_pg | $(awk -v a="$gw_pg" -v b="$dir_pg" 'BEGIN{printf "%.2f", a/b}') | $(awk -v a="$cb_us" -v b="$gw_pg" 'BEGIN{printf "%.2f", a/b}') | $cs |"
done
