"""`gateway passwd`: the printed entry loads as a requesters file and holds no plaintext."""

from __future__ import annotations

import io
import re

from gateway.cli import main
from gateway.identity.requesters import parse_requesters


def _run(capsys, monkeypatch, argv, stdin=""):
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(["passwd", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _as_file(snippet: str) -> str:
    entry = "\n".join(line for line in snippet.splitlines() if not line.startswith("#"))
    return "requesters:\n" + entry + "\n    agency: Colorado DMV\n    internal: true\n"


def test_password_and_token(capsys, monkeypatch):
    code, out, _ = _run(capsys, monkeypatch, ["alice", "--password-stdin", "--new-token"], "correct horse\n")
    assert code == 0
    assert "correct horse" not in out
    token = re.search(r"^#   (\S+)$", out, re.M).group(1)
    registry = parse_requesters(_as_file(out))
    entry = registry.lookup("alice")
    assert entry.scram.verify_password("correct horse")
    assert registry.by_token(token) is entry
    assert registry.example_credentials_in_use() == []


def test_token_only(capsys, monkeypatch):
    code, out, _ = _run(capsys, monkeypatch, ["bob", "--new-token", "--no-password"])
    assert code == 0 and "scram:" not in out and "token_hash: \"sha256:" in out
    assert parse_requesters(_as_file(out)).lookup("bob").scram is None


def test_refusals(capsys, monkeypatch):
    assert _run(capsys, monkeypatch, ["alice", "--password-stdin"], "\n")[0] == 1
    assert _run(capsys, monkeypatch, ["bad name", "--password-stdin"], "x\n")[0] == 2
    code, _, err = _run(capsys, monkeypatch, ["alice", "--no-password"])
    assert code == 2 and "--new-token" in err
