# TEST ONLY: a stand-in for the official postgres image where no public image can be pulled (docker/test.sh).
# Debian's PostgreSQL on the given Debian bookworm base, with an entrypoint that honours the same
# interface as the official image: POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB, PGDATA and the
# scripts in /docker-entrypoint-initdb.d (*.sh and *.sql, run once on an empty data directory).
ARG BASE=localhost/debian-bookworm-min
FROM ${BASE}
# test stand-in: the Debian release pins the package; the package's own user runs it
# hadolint global ignore=DL3008,DL3066
ARG PG_MAJOR=15
RUN mkdir -p /etc/postgresql-common \
    && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf \
    && apt-get update && apt-get install -y --no-install-recommends "postgresql-${PG_MAJOR}" \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/postgresql/data /docker-entrypoint-initdb.d \
    && chown -R postgres:postgres /var/lib/postgresql
COPY ci/pg-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENV PATH=/usr/lib/postgresql/${PG_MAJOR}/bin:$PATH PGDATA=/var/lib/postgresql/data
USER postgres
STOPSIGNAL SIGINT
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
CMD ["postgres"]
