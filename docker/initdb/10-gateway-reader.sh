#!/bin/sh
# Runs once, when the DMV database is created (postgres image: /docker-entrypoint-initdb.d).
# The gateway connects as gateway_reader: it can log in and read, nothing else. Tables created
# later by the owner (the seed, your own migrations) are readable by it through default privileges.
set -eu
if [ -n "${GATEWAY_READER_PASSWORD_FILE:-}" ]; then GATEWAY_READER_PASSWORD=$(cat "$GATEWAY_READER_PASSWORD_FILE"); fi
: "${GATEWAY_READER_PASSWORD:?set GATEWAY_READER_PASSWORD}"
psql -v ON_ERROR_STOP=1 -v pw="$GATEWAY_READER_PASSWORD" --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE gateway_reader LOGIN PASSWORD :'pw';
ALTER ROLE gateway_reader SET default_transaction_read_only = on;
GRANT CONNECT ON DATABASE :"DBNAME" TO gateway_reader;
ALTER DEFAULT PRIVILEGES GRANT USAGE ON SCHEMAS TO gateway_reader;
ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO gateway_reader;
SQL
