"""``gateway healthcheck``: is the gateway configured here answering? For container health checks.

It reads the same settings as ``gateway serve`` (``--config``, ``GATEWAY_HTTP_LISTEN``, TLS), so it
follows the listen address wherever it is configured, and asks ``/healthz`` (or ``/readyz`` with
``--ready``). Exit 0 when the answer is 200, else 1 with one line saying why.
"""

from __future__ import annotations

import argparse
import sys

HELP = "exit 0 if the gateway's HTTP front door answers /healthz (or /readyz); for container health checks"
DESCRIPTION = (
    "Ask the HTTP front door configured by --config / GATEWAY_HTTP_LISTEN (https when TLS is configured) for "
    "/healthz, or /readyz with --ready (backend reachable, request log writable). Exit 0 on 200, 1 otherwise."
)

#: A wildcard listen address is probed on the loopback of the same family.
_WILDCARD = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1", "*": "127.0.0.1"}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="YAML settings file (env GATEWAY_* overrides it)")
    parser.add_argument("--ready", action="store_true", help="ask /readyz instead of /healthz")
    parser.add_argument("--timeout", type=float, default=4.0, help="seconds (default 4)")


def probe_url(http_listen: str, tls: bool, ready: bool) -> str:
    """The URL to probe for a listen address.

    >>> probe_url("0.0.0.0:8080", False, False)
    'http://127.0.0.1:8080/healthz'
    >>> probe_url("[::]:8443", True, True)
    'https://[::1]:8443/readyz'
    """
    from gateway.config import split_listen

    host, port = split_listen(http_listen)
    host = _WILDCARD.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if tls else 'http'}://{host}:{port}/{'readyz' if ready else 'healthz'}"


def run(args: argparse.Namespace) -> int:
    import ssl
    import urllib.error
    import urllib.request

    from gateway.config import load_settings
    from gateway.errors import ConfigError

    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(f"gateway healthcheck: {exc}", file=sys.stderr)
        return 1
    url = probe_url(settings.http_listen, settings.tls_enabled, args.ready)
    context = None
    if settings.tls_enabled:  # the probe reads a status over loopback; the certificate names the service
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=args.timeout, context=context) as response:  # noqa: S310
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        print(f"gateway healthcheck: {url}: {reason}", file=sys.stderr)
        return 1
    if status != 200:
        print(f"gateway healthcheck: {url}: HTTP {status}", file=sys.stderr)
        return 1
    print(f"{url}: ok")
    return 0
