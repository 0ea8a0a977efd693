"""Literal values never reach the request log in clear; a value can still be found by its hash."""

from __future__ import annotations

from gateway.audit.literals import LiteralHasher
from gateway.audit.record import build_request_record
from gateway.audit.search import SearchQuery, search

KEY = b"k" * 32


def test_every_kind_of_literal_and_comment_is_hashed() -> None:
    hasher = LiteralHasher(KEY)
    sql = (
        "SELECT * FROM dmv.licenses /* for CO12345678 */ WHERE license_number = 'CO12345678' "
        "AND person_id = 4242 AND x = E'esc\\'aped' AND y = $$dollar body$$ AND z = $1 -- note 99\nLIMIT 10"
    )
    out = hasher.hash_sql(sql)
    assert out is not None
    for secret in ("CO12345678", "4242", "esc", "dollar body", "note 99"):
        assert secret not in out
    assert "$1" in out  # a placeholder is not a value
    assert "dmv.licenses" in out and "license_number" in out  # identifiers stay readable
    assert f"'{hasher.hash_literal('CO12345678')}'" in out
    assert f"'{hasher.hash_literal('4242')}'" in out


def test_hash_is_keyed_and_stable() -> None:
    a, b = LiteralHasher(KEY), LiteralHasher(b"other key 32 bytes long.........")
    assert a.hash_literal("CO1") == a.hash_literal("CO1") != b.hash_literal("CO1")
    assert a.hash_literal(42) == a.hash_literal("42")
    assert a.hash_literal("CO1").startswith("h:") and len(a.hash_literal("CO1")) == 18


def test_untokenizable_sql_is_hashed_whole() -> None:
    out = LiteralHasher(KEY).hash_sql("SELECT 'unterminated CO999")
    assert out is not None and "CO999" not in out and "untokenizable" in out


def test_hashing_off_keeps_text() -> None:
    hasher = LiteralHasher(KEY, enabled=False)
    assert hasher.hash_sql("select 'a'") == "select 'a'"
    assert hasher.hash_params(["CO1", 5, None]) == ["CO1", 5, None]


def test_search_finds_a_license_in_sql_or_params_by_hash() -> None:
    hasher = LiteralHasher(KEY)
    common = dict(hasher=hasher, requester="cbi_analyst", agency="CBI", front_door="pg", decision="allow")
    records = [
        build_request_record(request_id="r1", sql_received="select * from dmv.licenses where license_number = 'CO777'", **common),
        build_request_record(request_id="r2", sql_received="select * from dmv.licenses where license_number = $1",
                             params=["CO777"], **common),
        build_request_record(request_id="r3", sql_received="select * from dmv.licenses where license_number = 'CO778'", **common),
    ]  # fmt: skip
    assert all("CO777" not in str(r) for r in records)
    found = search(records, SearchQuery(values=("CO777",)), hasher)
    assert [r["request_id"] for r in found] == ["r1", "r2"]
