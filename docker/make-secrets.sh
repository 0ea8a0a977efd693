#!/usr/bin/env bash
# Create the secrets compose.yaml and podman-run.sh mount, in SECRETS_DIR (default docker/.secrets,
# git-ignored, mode 0700). Files that already exist are kept, so running it again changes nothing.
#
#   db_password          the DMV database owner's password (postgres)           random
#   reader_password      gateway_reader: the role the gateway reads as          random
#   audit_db_password    gateway_audit: owner of the request-log table          random
#   audit.key            the request-log key (64 hex digits; every replica)     random
#   gateway.yaml         backend_dsn and audit_dsn (they hold passwords)        from the above
#   requesters.yaml      the requesters file                                    $REQUESTERS_FILE, else
#                        a copy of policies/requesters.example.yaml: EXAMPLE CREDENTIALS
#
# DB_HOST / AUDIT_DB_HOST / DB_PORT / AUDIT_DB_PORT say where the gateways reach the databases
# (compose: db / audit-db on 5432; podman-run.sh: 127.0.0.1 and its ports).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dir=${SECRETS_DIR:-$here/.secrets}
DB_HOST=${DB_HOST:-db} DB_PORT=${DB_PORT:-5432}
AUDIT_DB_HOST=${AUDIT_DB_HOST:-audit-db} AUDIT_DB_PORT=${AUDIT_DB_PORT:-5432}
mkdir -p "$dir" && chmod 0700 "$dir"
umask 0222  # files 0444: the directory (0700) protects them on the host; each container mounts one

random() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }
new() {  # new NAME VALUE: write once
  [ -e "$dir/$1" ] || printf '%s\n' "$2" > "$dir/$1"
}
new db_password "$(random)"
new reader_password "$(random)"
new audit_db_password "$(random)"
new audit.key "$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
if [ ! -e "$dir/gateway.yaml" ]; then
  cat > "$dir/gateway.yaml" <<YAML
# gateway settings that hold passwords (mounted as GATEWAY_CONFIG; GATEWAY_* env vars override)
backend_dsn: postgresql://gateway_reader:$(cat "$dir/reader_password")@$DB_HOST:$DB_PORT/dmv
audit_dsn: postgresql://gateway_audit:$(cat "$dir/audit_db_password")@$AUDIT_DB_HOST:$AUDIT_DB_PORT/audit
YAML
fi
if [ ! -e "$dir/requesters.yaml" ]; then
  if [ -n "${REQUESTERS_FILE:-}" ]; then
    cp "$REQUESTERS_FILE" "$dir/requesters.yaml"
  else
    { echo "# !!! EXAMPLE CREDENTIALS (NAME-demo-password, NAME-demo-token): replace before real use !!!"
      echo "# (gateway passwd NAME prints a verifier and token hash; see docs/dba.md)"
      cat "$here/../policies/requesters.example.yaml"; } > "$dir/requesters.yaml"
    echo "make-secrets: $dir/requesters.yaml holds the EXAMPLE requesters and their documented credentials" >&2
  fi
fi
echo "$dir"
