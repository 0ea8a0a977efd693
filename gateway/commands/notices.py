"""``gateway notices``: the subject-notice queue (SPEC 10): list, mark sent, defer, export, push."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

HELP = "list the subject notices owed, mark them sent or deferred, export them to the mail system"
DESCRIPTION = (
    "Every request by an immigration agency, and every release under a court order, queues a notice "
    "to each person it named, due 3 days later (or 3 business days, as the policy's notices section "
    "says). The queue lives beside the request log (subject-notices.ndjson) and holds the person's id, "
    "not their data. `export` writes the pending notices for the agency's mail system (JSON or CSV); "
    "`push --webhook URL` POSTs them as JSON and marks them exported."
)
FIELDS = ("id", "status", "due", "person", "requester", "agency", "requested_at", "reason", "asked", "request_id",
          "sent_at", "deferred_reason", "exported_at")  # fmt: skip


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--queue", type=Path, help="the queue file (default: beside the configured audit_path)")
    parser.add_argument("--config", help="settings file (for the default audit_path)")
    sub = parser.add_subparsers(dest="notices_command", metavar="SUBCOMMAND")
    lister = sub.add_parser("list", help="the notices, oldest first")
    lister.add_argument("--json", action="store_true")
    lister.add_argument("--overdue", action="store_true", help="only those past their due date and not sent")
    lister.add_argument("--status", choices=("queued", "sent", "deferred"))
    sent = sub.add_parser("mark-sent", help="the notice was sent to the person")
    sent.add_argument("id")
    defer = sub.add_parser("defer", help="hold a notice back, with the reason (a court's sealing order, say)")
    defer.add_argument("id")
    defer.add_argument("--reason", required=True)
    export = sub.add_parser("export", help="write the notices still to send, for the agency's mail system")
    export.add_argument("--format", choices=("json", "csv"), default="json")
    export.add_argument("--out", default="-", help="file ('-': stdout)")
    export.add_argument("--all", action="store_true", help="every notice, not only those still queued")
    push = sub.add_parser("push", help="POST the queued, not yet exported notices to the mail system's webhook")
    push.add_argument("--webhook", required=True, help="URL that takes a JSON array of notices")
    push.add_argument("--timeout", type=float, default=30.0)


def _queue(args: argparse.Namespace) -> Any:
    from gateway.notices.queue import NoticeQueue, queue_path

    if args.queue:
        return NoticeQueue(args.queue)
    from gateway.config import load_settings

    return NoticeQueue(queue_path(load_settings(args.config).audit_path))


def _list(args: argparse.Namespace, queue: Any) -> int:
    today = date.today()
    notices = queue.notices()
    if args.overdue:
        notices = [n for n in notices if n.overdue(today)]
    if args.status:
        notices = [n for n in notices if n.status == args.status]
    if args.json:
        print(json.dumps([dict(n.as_dict(), overdue=n.overdue(today)) for n in notices], indent=2))
        return 0
    print(f"{'id':<26} {'status':<9} {'due':<10} {'person':<22} {'requester':<12} reason")
    for n in notices:
        flag = "OVERDUE" if n.overdue(today) else n.status
        print(f"{n.id:<26} {flag:<9} {n.due:<10} {n.person:<22} {n.requester:<12} {n.reason}")
    print(f"{len(notices)} notice(s)")
    return 0


def _change(args: argparse.Namespace, queue: Any) -> int:
    notice = queue.get(args.id)
    if notice is None:
        print(f"gateway notices: no notice {args.id!r} (see gateway notices list)", file=sys.stderr)
        return 2
    if notice.status == "sent":
        print(f"gateway notices: {args.id} was already sent on {notice.sent_at}", file=sys.stderr)
        return 2
    if args.notices_command == "mark-sent":
        queue.mark_sent(args.id)
        print(f"{args.id}: sent")
    else:
        queue.defer(args.id, args.reason)
        print(f"{args.id}: deferred ({args.reason})")
    return 0


def _pending(queue: Any, everything: bool = False) -> list[Any]:
    return [n for n in queue.notices() if everything or n.status == "queued"]


def _export(args: argparse.Namespace, queue: Any) -> int:
    notices = _pending(queue, args.all)
    if args.format == "json":
        text = json.dumps([n.as_dict() for n in notices], indent=2) + "\n"
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=FIELDS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(n.as_dict() for n in notices)
        text = buffer.getvalue()
    if args.out == "-":
        sys.stdout.write(text)
    else:
        Path(args.out).write_text(text, "utf-8")
        queue.mark_exported([n.id for n in notices], args.out)
        print(f"wrote {len(notices)} notice(s) to {args.out}", file=sys.stderr)
    return 0


def _push(args: argparse.Namespace, queue: Any) -> int:
    import httpx

    notices = [n for n in _pending(queue) if not n.exported_at]
    if not notices:
        print("no notice to push")
        return 0
    try:
        response = httpx.post(args.webhook, json=[n.as_dict() for n in notices], timeout=args.timeout)
    except httpx.HTTPError as exc:
        print(f"gateway notices: the webhook {args.webhook} is not reachable: {exc}", file=sys.stderr)
        return 1
    if response.status_code >= 300:
        print(f"gateway notices: the webhook answered {response.status_code}: {response.text[:200]}", file=sys.stderr)
        return 1
    queue.mark_exported([n.id for n in notices], args.webhook)
    print(f"pushed {len(notices)} notice(s) to {args.webhook}")
    return 0


def run(args: argparse.Namespace) -> int:
    from gateway.errors import ConfigError

    command = getattr(args, "notices_command", None)
    if not command:
        print("usage: gateway notices {list,mark-sent,defer,export,push} ... (see --help)", file=sys.stderr)
        return 2
    try:
        queue = _queue(args)
        handler = {"list": _list, "mark-sent": _change, "defer": _change, "export": _export, "push": _push}[command]
        return handler(args, queue)
    except (ConfigError, OSError, ValueError) as exc:
        print(f"gateway notices: {exc}", file=sys.stderr)
        return 1
