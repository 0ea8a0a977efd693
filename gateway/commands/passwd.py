"""``gateway passwd NAME``: print a requesters-file entry with a SCRAM verifier and/or a token hash.

The password is read from the terminal (twice) or, with ``--password-stdin``, from the first line
of standard input; it is never written anywhere. ``--new-token`` makes a random bearer token and
prints it once, with the hash that goes into the file.
"""

from __future__ import annotations

import argparse
import getpass
import sys

HELP = "print a requesters-file entry (SCRAM verifier, token hash) for a requester"
DESCRIPTION = (
    "Prints the `scram:` line for the requesters file from a password read from the terminal (or "
    "--password-stdin), and with --new-token a fresh random bearer token and its `token_hash:`. "
    "Nothing is stored: paste the lines under the requester's entry."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", help="the requester's name (its PostgreSQL user name)")
    parser.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    parser.add_argument("--new-token", action="store_true", help="also generate a random HTTP bearer token")
    parser.add_argument("--no-password", action="store_true", help="with --new-token: print only the token")
    parser.add_argument("--iterations", type=int, default=4096, help="PBKDF2 iterations (default 4096, as PostgreSQL)")


def run(args: argparse.Namespace) -> int:
    from gateway.identity.requesters import NAME
    from gateway.identity.secrets import ScramVerifier, hash_token, new_token

    if not NAME.match(args.name):
        print(f"gateway passwd: {args.name!r} is not a valid requester name", file=sys.stderr)
        return 2
    if args.no_password and not args.new_token:
        print("gateway passwd: --no-password only makes sense with --new-token", file=sys.stderr)
        return 2
    lines = [f"  {args.name}:"]
    if not args.no_password:
        password = _read_password(args.password_stdin)
        if password is None:
            return 1
        try:
            verifier = ScramVerifier.create(password, iterations=args.iterations)
        except Exception as exc:  # scramp: iteration count or SASLprep refused
            print(f"gateway passwd: cannot make a verifier: {exc}", file=sys.stderr)
            return 2
        lines.append(f'    scram: "{verifier}"')
    token = None
    if args.new_token:
        token = new_token()
        lines.append(f'    token_hash: "{hash_token(token)}"')
    if token:
        print(f"# bearer token for {args.name} (shown once; give it to the requester, store only the hash):")
        print(f"#   {token}")
    print("# paste under `requesters:` in the requesters file (keep agency, internal, purposes, ...):")
    print("\n".join(lines))
    return 0


def _read_password(from_stdin: bool) -> str | None:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = getpass.getpass("Password: ")
        if password != getpass.getpass("Again: "):
            print("gateway passwd: the passwords differ", file=sys.stderr)
            return None
    if not password:
        print("gateway passwd: empty password", file=sys.stderr)
        return None
    return password
