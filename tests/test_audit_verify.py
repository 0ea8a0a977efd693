"""``verify`` passes an untouched log and names the first broken link for each kind of tampering."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from gateway.audit.chain import ChainState
from gateway.audit.file_sink import AuditLog
from gateway.audit.verify import verify_files
from gateway.cli import main as gateway_main

KEY = bytes(range(32))


def write_log(directory: Path, n: int = 12, **opts: object) -> Path:
    async def go() -> None:
        log = AuditLog(directory / "requests.jsonl", instance="gw1", key=KEY, **opts)  # type: ignore[arg-type]
        await log.start()
        for i in range(n):
            await log.append({"type": "request", "request_id": f"r{i}", "decision": "allow", "requester": "u"})
        await log.close()

    asyncio.run(go())
    return directory / "requests.jsonl"


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines(keepends=True)


def test_untouched_log_verifies(tmp_path: Path) -> None:
    path = write_log(tmp_path)
    result = verify_files([tmp_path], KEY)
    assert result.ok, result.findings
    assert result.chains == {"gw1": (1, 14)}  # start checkpoint + 12 + close checkpoint
    assert result.records == 14 and not [f for f in result.findings if f.severity != "info"]
    assert verify_files([path], KEY).ok


def test_edit_is_found_with_file_and_line(tmp_path: Path) -> None:
    path = write_log(tmp_path)
    text = lines(path)
    text[4] = text[4].replace('"decision":"allow"', '"decision":"deny"')
    path.write_text("".join(text))
    result = verify_files([tmp_path], KEY)
    assert not result.ok
    assert result.first_break is not None
    assert result.first_break.where == "requests.jsonl line 5"
    assert "edited" in result.first_break.message


def test_deletion_is_found(tmp_path: Path) -> None:
    path = write_log(tmp_path)
    text = lines(path)
    del text[5:7]
    path.write_text("".join(text))
    brk = verify_files([tmp_path], KEY).first_break
    assert brk is not None and brk.where == "requests.jsonl line 6"
    assert "seq 6..7 missing" in brk.message and "deleted" in brk.message


def test_forged_insertion_is_found(tmp_path: Path) -> None:
    path = write_log(tmp_path)
    text = lines(path)
    before = json.loads(text[3])
    forged = ChainState(b"not the key" * 3, "gw1", seq=before["seq"], prev=before["hash"])
    text.insert(4, forged.seal({"type": "request", "request_id": "evil", "decision": "allow"})[1])
    path.write_text("".join(text))
    brk = verify_files([tmp_path], KEY).first_break
    assert brk is not None and brk.where == "requests.jsonl line 5" and "HMAC" in brk.message


def test_duplicated_record_is_found(tmp_path: Path) -> None:
    path = write_log(tmp_path)
    text = lines(path)
    text.insert(4, text[3])
    path.write_text("".join(text))
    brk = verify_files([tmp_path], KEY).first_break
    assert brk is not None and brk.where == "requests.jsonl line 5" and "duplicated or inserted" in brk.message


def test_reorder_is_found_and_named(tmp_path: Path) -> None:
    path = write_log(tmp_path)
    text = lines(path)
    text[4], text[5] = text[5], text[4]
    path.write_text("".join(text))
    brk = verify_files([tmp_path], KEY).first_break
    assert brk is not None and brk.where == "requests.jsonl line 5" and "out of order" in brk.message


def test_cut_in_the_middle_of_a_file_is_tampering_not_a_torn_line(tmp_path: Path) -> None:
    path = write_log(tmp_path)
    text = lines(path)
    text[6] = text[6][:40] + "\n"
    path.write_text("".join(text))
    result = verify_files([tmp_path], KEY)
    assert not result.ok and result.first_break is not None
    assert result.first_break.where == "requests.jsonl line 7"


def test_truncated_rotated_file_is_found(tmp_path: Path) -> None:
    write_log(tmp_path, n=60, rotate_bytes=1500)
    rotated = sorted(tmp_path.glob("requests.0*.jsonl"))
    assert len(rotated) >= 3
    victim = rotated[1]
    text = lines(victim)
    victim.write_text("".join(text[: len(text) // 2]))  # whole lines cut off the end of a middle file
    brk = verify_files([tmp_path], KEY).first_break
    assert brk is not None and "missing" in brk.message and rotated[2].name in brk.where


def test_wrong_key_is_named(tmp_path: Path) -> None:
    write_log(tmp_path)
    brk = verify_files([tmp_path], b"x" * 32).first_break
    assert brk is not None and "wrong key" in brk.message and brk.where == "requests.jsonl line 1"


def test_torn_last_line_is_a_warning(tmp_path: Path) -> None:
    path = write_log(tmp_path)
    with open(path, "a") as fh:
        fh.write('{"instance":"gw1","seq":15,"prev":"ab')  # a crash mid-write
    result = verify_files([tmp_path], KEY)
    assert result.ok
    torn = [f for f in result.findings if f.severity == "warning"]
    assert len(torn) == 1 and "torn" in torn[0].message and torn[0].where == "requests.jsonl line 15"


def test_restart_after_torn_line_keeps_the_chain(tmp_path: Path) -> None:
    path = write_log(tmp_path)
    with open(path, "a") as fh:
        fh.write('{"instance":"gw1","seq":15,"pre')
    write_log(tmp_path, n=3)  # the next start sets the torn file aside and continues the chain
    result = verify_files([tmp_path], KEY)
    assert result.ok, result.findings
    assert result.chains["gw1"] == (1, 14 + 5 + 1)  # + start, 3, close; + rotate checkpoint
    assert [f.severity for f in result.findings].count("warning") == 1


def test_missing_start_is_tampering_unless_retention_says_so(tmp_path: Path) -> None:
    write_log(tmp_path, n=40, rotate_bytes=1500)
    oldest = min(tmp_path.glob("requests.0*.jsonl"))
    oldest.unlink()
    result = verify_files([tmp_path], KEY)
    assert not result.ok and "no retention checkpoint" in str(result.first_break)


def test_verify_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_log(tmp_path)
    (tmp_path / "audit.key").write_text(KEY.hex() + "\n")
    assert gateway_main(["audit", "verify", str(tmp_path)]) == 0
    assert "chain intact" in capsys.readouterr().out
    text = lines(path)
    del text[3]
    path.write_text("".join(text))
    assert gateway_main(["audit", "verify", str(tmp_path)]) == 1
    captured = capsys.readouterr()
    assert "BROKEN: requests.jsonl line 4" in captured.err and "CHAIN BROKEN" in captured.out
    assert gateway_main(["audit", "verify", str(tmp_path / "nope")]) == 2
