"""``gateway certification add|list|revoke``: certifications on file (SB21-131, 24-74-105 C.R.S.)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import date
from pathlib import Path

HELP = "add, list or revoke the certifications of requesters outside the agency (24-74-105 C.R.S.)"
DESCRIPTION = (
    "A requester outside the agency reads personal identifying information only with a certification on "
    "file, signed within the policy's certification_valid_days, that it will neither use the data for "
    "immigration enforcement nor pass it to anyone who does. `add` files one (signer, date, form version, "
    "both clauses), `list` shows every certification with its expiry and status, `revoke ID` withdraws one. "
    "They are kept in certifications.yaml beside the requesters file; a running gateway picks changes up "
    "within seconds."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--requesters", default=os.environ.get("GATEWAY_REQUESTERS", "policies/requesters.example.yaml"),
                        help="requesters file (default: $GATEWAY_REQUESTERS or policies/requesters.example.yaml)")
    parser.add_argument("--policy", default=os.environ.get("GATEWAY_POLICY", "policies/colorado-dmv.yaml"),
                        help="policy file, for certification_valid_days (default: $GATEWAY_POLICY)")
    sub = parser.add_subparsers(dest="cert_command", metavar="SUBCOMMAND")
    add = sub.add_parser("add", help="file a signed certification for a requester")
    add.add_argument("requester")
    add.add_argument("--signer", required=True, help="who signed it (name and title)")
    add.add_argument("--signed-on", required=True, type=date.fromisoformat, help="the date signed (YYYY-MM-DD)")
    add.add_argument("--form-version", required=True, help="the version of the certification form")
    add.add_argument("--no-immigration-use", action="store_true",
                     help="the form carries the clause: the data will not be used for immigration enforcement")
    add.add_argument("--no-redisclosure", action="store_true",
                     help="the form carries the clause: the data will not be passed to anyone who does")
    add.add_argument("--id", default="", help="an id (default CERT-REQUESTER-DATE)")
    add.add_argument("--document", default="", help="where the signed form is kept")
    lister = sub.add_parser("list", help="every certification with its expiry and status")
    lister.add_argument("--json", action="store_true")
    lister.add_argument("--expiring", type=int, metavar="DAYS", help="only those expiring within DAYS days")
    revoke = sub.add_parser("revoke", help="withdraw a certification")
    revoke.add_argument("id")
    revoke.add_argument("--reason", required=True)
    revoke.add_argument("--on", type=date.fromisoformat, default=None, help="effective date (default today)")


def _valid_days(policy_path: str) -> int:
    from gateway.policy.load import load_policy

    return load_policy(policy_path).file.external_requesters.certification_valid_days


def _change(requesters_path: Path, change) -> None:  # type: ignore[no-untyped-def]
    """Apply ``change`` to the side file, then reload the requesters; restore the old file on error."""
    from gateway.identity.certifications import read_side_file, side_file, write_side_file
    from gateway.identity.requesters import load_requesters

    path = side_file(requesters_path)
    old = path.read_bytes() if path.exists() else None
    _, model = read_side_file(path)
    write_side_file(path, change(model))
    try:
        load_requesters(requesters_path)
    except Exception:
        if old is None:
            path.unlink()
        else:
            path.write_bytes(old)
        raise


def _add(args: argparse.Namespace) -> int:
    from gateway.identity.certifications import CertificationsFile, FiledCertification
    from gateway.identity.requesters import load_requesters

    if not (args.no_immigration_use and args.no_redisclosure):
        print("gateway certification: a certification counts only with both clauses (24-74-105 C.R.S.): "
              "pass --no-immigration-use and --no-redisclosure once the signed form carries them", file=sys.stderr)
        return 2
    registry = load_requesters(args.requesters)
    entry = registry.lookup(args.requester)
    if entry is None:
        print(f"gateway certification: no requester {args.requester!r} in {args.requesters}", file=sys.stderr)
        return 2
    cert = FiledCertification(requester=args.requester, id=args.id, signer=args.signer, signed_on=args.signed_on,
                              form_version=args.form_version, no_immigration_use=True, no_redisclosure=True,
                              document=args.document)  # fmt: skip
    built = cert.build(args.requester)
    if any(c.id == built.id for e in registry for c in e.certifications):
        print(f"gateway certification: certification {built.id} is already on file", file=sys.stderr)
        return 2

    def change(model: CertificationsFile) -> CertificationsFile:
        return model.model_copy(update={"certifications": (*model.certifications, cert)})

    _change(Path(args.requesters), change)
    print(f"added {built.id} for {args.requester}, signed {built.signed_on} by {built.signer}")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from gateway.identity.certifications import CertificationsFile, Revocation
    from gateway.identity.requesters import load_requesters

    registry = load_requesters(args.requesters)
    known = {c.id: e.requester.name for e in registry for c in e.certifications}
    if args.id not in known:
        print(f"gateway certification: no certification {args.id!r} on file (see `gateway certification list`)",
              file=sys.stderr)
        return 2
    on = args.on or date.today()

    def change(model: CertificationsFile) -> CertificationsFile:
        kept = tuple(r for r in model.revocations if r.id != args.id)
        return model.model_copy(update={"revocations": (*kept, Revocation(id=args.id, on=on, reason=args.reason))})

    _change(Path(args.requesters), change)
    print(f"revoked {args.id} ({known[args.id]}) from {on}: {args.reason}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from gateway.identity.certifications import summary
    from gateway.identity.requesters import load_requesters

    registry = load_requesters(args.requesters)
    days = _valid_days(args.policy)
    today = date.today()
    rows = []
    for entry in sorted(registry, key=lambda e: e.requester.name):
        req = entry.requester
        rows += summary(req.name, req.agency, entry.certifications, req.certification, today, days)
        if not req.internal and not entry.certifications and not req.is_auditor:
            rows.append({"requester": req.name, "agency": req.agency, "id": None, "status": "missing",
                         "expires_on": None, "days_left": None, "signer": None, "signed_on": None,
                         "form_version": None})  # fmt: skip
    if args.expiring is not None:
        rows = [r for r in rows if r["status"] == "current" and r["days_left"] is not None
                and int(r["days_left"]) <= args.expiring]  # type: ignore[call-overload]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'requester':<14} {'id':<24} {'signed':<10} {'expires':<10} {'status':<12} signer / form")
    for r in rows:
        print(f"{r['requester']:<14} {r['id'] or '-':<24} {r['signed_on'] or '-':<10} {r['expires_on'] or '-':<10} "
              f"{r['status']:<12} {r['signer'] or ''} / {r['form_version'] or ''}")
    return 0


def run(args: argparse.Namespace) -> int:
    from gateway.errors import ConfigError

    command = getattr(args, "cert_command", None)
    if not command:
        print("usage: gateway certification {add,list,revoke} ... (see gateway certification --help)", file=sys.stderr)
        return 2
    try:
        return {"add": _add, "list": _list, "revoke": _revoke}[command](args)
    except (ConfigError, OSError, ValueError) as exc:
        print(f"gateway certification: {exc}", file=sys.stderr)
        return 1
