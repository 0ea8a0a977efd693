# TEST ONLY: a stand-in for the official haproxy image where no public image can be pulled (docker/test.sh).
ARG BASE=localhost/debian-bookworm-min
FROM ${BASE}
# test stand-in: the Debian release pins the package; the package's own user runs it
# hadolint global ignore=DL3008,DL3066
RUN apt-get update && apt-get install -y --no-install-recommends haproxy \
    && rm -rf /var/lib/apt/lists/* && mkdir -p /usr/local/etc/haproxy
USER haproxy
STOPSIGNAL SIGUSR1
CMD ["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
