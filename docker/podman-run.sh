#!/usr/bin/env bash
# docker/compose.yaml as plain podman commands: PostgreSQL with the reference data, a separate audit
# database, two gateway replicas writing one request log (PostgreSQL sink, a chain each) and HAProxy
# in front (TCP for the wire protocol, HTTP health checks on /readyz).
#
#   docker/podman-run.sh up       build nothing; start everything (secrets made on first use)
#   docker/podman-run.sh status   containers and their health
#   docker/podman-run.sh down     stop and remove the containers (data volumes kept: the two
#                                 databases and the replicas' shared state, e.g. the notice queue)
#   docker/podman-run.sh purge    ... and the data volumes and secrets
#
# Every container uses the host's network (it works where no container network can be set up) with
# each service on its own port of $BIND (127.0.0.1 by default: nothing is reachable from outside
# unless you set BIND=0.0.0.0 deliberately). Compose gives each service its own network address
# instead; otherwise the two are the same.
#
# !!! EXAMPLE CREDENTIALS: unless REQUESTERS_FILE is set on first use, the requesters are the
# !!! documented examples (NAME-demo-password, NAME-demo-token); the gateways warn at start.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

PODMAN=${PODMAN:-podman}                   # e.g. "podman --runtime /usr/sbin/runc"
RUN_OPTS=${RUN_OPTS:-}                     # extra `podman run` options, e.g. "--ulimit host"
PREFIX=${PREFIX:-dmvgw}
GATEWAY_IMAGE=${GATEWAY_IMAGE:-localhost/dmv-gateway:0.1.0}
POSTGRES_IMAGE=${POSTGRES_IMAGE:-docker.io/library/postgres:16.4-bookworm}
HAPROXY_IMAGE=${HAPROXY_IMAGE:-docker.io/library/haproxy:2.8.10}
BIND=${BIND:-127.0.0.1}
DB_PORT=${DB_PORT:-55432}
AUDIT_DB_PORT=${AUDIT_DB_PORT:-55433}
GW1_PG_PORT=${GW1_PG_PORT:-56432}  GW1_HTTP_PORT=${GW1_HTTP_PORT:-58080}
GW2_PG_PORT=${GW2_PG_PORT:-56433}  GW2_HTTP_PORT=${GW2_HTTP_PORT:-58081}
HAPROXY_PG_PORT=${HAPROXY_PG_PORT:-6432}  HAPROXY_HTTP_PORT=${HAPROXY_HTTP_PORT:-8080}
SEED_PERSONS=${SEED_PERSONS:-10000}
export SECRETS_DIR=${SECRETS_DIR:-$here/.secrets}
WAIT_S=${WAIT_S:-120}
# podman runs health checks from systemd timers; without systemd this script runs them itself
if [ -z "${HEALTH_INTERVAL:-}" ]; then
  if [ -S /run/systemd/private ]; then HEALTH_INTERVAL=10s; else HEALTH_INTERVAL=disable; fi
fi

pm() { $PODMAN "$@"; }
run() { pm run -d --network=host --health-interval="$HEALTH_INTERVAL" $RUN_OPTS "$@"; }
secret() { echo "--volume=$SECRETS_DIR/$1:/run/secrets/$1:ro,Z"; }

wait_healthy() {  # NAME: until `podman healthcheck run` passes (the image's or the --health-cmd check)
  local deadline=$((SECONDS + WAIT_S))
  until pm healthcheck run "$1" >/dev/null 2>&1; do
    if [ "$(pm inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" != true ]; then
      echo "podman-run: $1 exited:" >&2; pm logs --tail 30 "$1" >&2 || true; return 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "podman-run: $1 not healthy after ${WAIT_S}s:" >&2; pm logs --tail 30 "$1" >&2 || true; return 1
    fi
    sleep 0.5
  done
}

psql_db() {  # SQL as the database owner, inside the db container
  pm exec -e PGPASSWORD="$(cat "$SECRETS_DIR/db_password")" "$PREFIX-db" \
    psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$DB_PORT" -U postgres -d dmv "$@"
}

postgres() {  # NAME PORT VOLUME ENV...
  local name=$1 port=$2 volume=$3; shift 3
  run --name "$name" "$@" --volume="$volume:/var/lib/postgresql/data" \
    --health-cmd="pg_isready -h 127.0.0.1 -p $port" \
    "$POSTGRES_IMAGE" postgres -c listen_addresses=127.0.0.1 -p "$port" >/dev/null
}

gateway() {  # NAME PG_PORT HTTP_PORT
  run --name "$1" --read-only --tmpfs /tmp --cap-drop=ALL --security-opt=no-new-privileges \
    $(secret gateway.yaml) $(secret requesters.yaml) $(secret audit.key) --volume="$PREFIX-gateway-state:/var/lib/gateway" \
    -e GATEWAY_CONFIG=/run/secrets/gateway.yaml -e GATEWAY_REQUESTERS=/run/secrets/requesters.yaml \
    -e GATEWAY_AUDIT_KEY=/run/secrets/audit.key -e GATEWAY_INSTANCE_NAME="$1" \
    -e GATEWAY_PG_LISTEN="127.0.0.1:$2" -e GATEWAY_HTTP_LISTEN="127.0.0.1:$3" \
    "$GATEWAY_IMAGE" serve >/dev/null
}

up() {
  DB_HOST=127.0.0.1 AUDIT_DB_HOST=127.0.0.1 DB_PORT=$DB_PORT AUDIT_DB_PORT=$AUDIT_DB_PORT \
    "$here/make-secrets.sh" >/dev/null
  postgres "$PREFIX-db" "$DB_PORT" "$PREFIX-dmv-data" -e POSTGRES_DB=dmv \
    $(secret db_password) $(secret reader_password) \
    -e POSTGRES_PASSWORD_FILE=/run/secrets/db_password -e GATEWAY_READER_PASSWORD_FILE=/run/secrets/reader_password \
    --volume="$here/initdb/10-gateway-reader.sh:/docker-entrypoint-initdb.d/10-gateway-reader.sh:ro,Z"
  postgres "$PREFIX-audit-db" "$AUDIT_DB_PORT" "$PREFIX-audit-data" -e POSTGRES_USER=gateway_audit \
    -e POSTGRES_DB=audit $(secret audit_db_password) -e POSTGRES_PASSWORD_FILE=/run/secrets/audit_db_password
  wait_healthy "$PREFIX-db"
  wait_healthy "$PREFIX-audit-db"
  if [ "$(psql_db -tAc "SELECT count(*) FROM pg_namespace WHERE nspname = 'dmv'")" = 0 ]; then
    echo "seeding $SEED_PERSONS persons"
    pm run --rm --network=host $RUN_OPTS $(secret db_password) --entrypoint sh "$GATEWAY_IMAGE" -c \
      "exec gateway seed --dsn \"postgresql://postgres:\$(cat /run/secrets/db_password)@127.0.0.1:$DB_PORT/dmv\" --persons $SEED_PERSONS --seed 1"
  fi
  gateway "$PREFIX-gateway1" "$GW1_PG_PORT" "$GW1_HTTP_PORT"
  gateway "$PREFIX-gateway2" "$GW2_PG_PORT" "$GW2_HTTP_PORT"
  wait_healthy "$PREFIX-gateway1"
  wait_healthy "$PREFIX-gateway2"
  run --name "$PREFIX-haproxy" --volume="$here/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro,Z" \
    -e HAPROXY_BIND="$BIND" -e HAPROXY_PG_PORT="$HAPROXY_PG_PORT" -e HAPROXY_HTTP_PORT="$HAPROXY_HTTP_PORT" \
    -e GW1_HOST=127.0.0.1 -e GW1_PG_PORT="$GW1_PG_PORT" -e GW1_HTTP_PORT="$GW1_HTTP_PORT" \
    -e GW2_HOST=127.0.0.1 -e GW2_PG_PORT="$GW2_PG_PORT" -e GW2_HTTP_PORT="$GW2_HTTP_PORT" \
    --health-cmd="bash -c 'exec 3<>/dev/tcp/$BIND/$HAPROXY_PG_PORT'" \
    "$HAPROXY_IMAGE" haproxy -W -db -f /usr/local/etc/haproxy/haproxy.cfg >/dev/null
  wait_healthy "$PREFIX-haproxy"
  echo "up: wire protocol on $BIND:$HAPROXY_PG_PORT, HTTP on $BIND:$HAPROXY_HTTP_PORT (secrets in $SECRETS_DIR)"
}

CONTAINERS=(haproxy gateway1 gateway2 db audit-db)

down() {
  for c in "${CONTAINERS[@]}"; do pm rm -f -v -t 40 "$PREFIX-$c" >/dev/null 2>&1 || true; done
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  purge) down; pm volume rm -f "$PREFIX-dmv-data" "$PREFIX-audit-data" "$PREFIX-gateway-state" >/dev/null 2>&1 || true; rm -rf "$SECRETS_DIR" ;;
  status)
    for c in "${CONTAINERS[@]}"; do
      printf '%-22s %s\n' "$PREFIX-$c" "$(pm inspect -f '{{.State.Status}} {{.State.Health.Status}}' "$PREFIX-$c" 2>/dev/null || echo absent)"
    done ;;
  *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
