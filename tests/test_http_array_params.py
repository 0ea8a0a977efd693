"""POST /v1/query with array parameters: ``= ANY($1)`` with ``[[1, 2]]`` binds an array typed by the
parameter's inferred type (int4[] here, text[] for a text column), against the real app and the
seeded PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from http_support import Client, make_gateway

from gateway.frontdoor.http import build_app


@pytest.fixture(scope="module")
def client(dmv_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    with asyncio.Runner() as runner:
        gateway = make_gateway(dmv_dsn, tmp_path_factory.mktemp("http-arrays") / "requests.jsonl")
        runner.run(gateway.start())
        try:
            yield Client(runner, build_app(gateway, rate_per_second=10_000, rate_burst=10_000))
        finally:
            runner.run(gateway.stop())


def _rows(r: Any) -> list[list[Any]]:
    assert r.status_code == 200, r.text
    return r.json()["rows"]


def test_any_of_an_int_array_parameter(client: Client) -> None:
    r = client.query("dmv_clerk", {"sql": "SELECT person_id FROM dmv.persons WHERE person_id = ANY($1) ORDER BY 1",
                                   "params": [[1, 2, 3]], "purpose": "service_delivery"})
    assert _rows(r) == [[1], [2], [3]]


def test_any_of_a_text_array_parameter_and_an_empty_array(client: Client) -> None:
    sql = "SELECT count(*) FROM dmv.persons WHERE county = ANY($1)"
    counties = _rows(client.query("dmv_clerk", {"sql": "SELECT DISTINCT county FROM dmv.persons ORDER BY 1 LIMIT 2",
                                                "purpose": "service_delivery"}))
    two = [c[0] for c in counties]
    total = _rows(client.query("dmv_clerk", {"sql": sql, "params": [two], "purpose": "service_delivery"}))[0][0]
    each = [_rows(client.query("dmv_clerk", {"sql": sql, "params": [[c]], "purpose": "service_delivery"}))[0][0]
            for c in two]
    assert total == sum(each) > 0
    assert _rows(client.query("dmv_clerk", {"sql": sql, "params": [[]], "purpose": "service_delivery"})) == [[0]]


def test_a_two_dimensional_array_parameter(client: Client) -> None:
    r = client.query("dmv_clerk", {"sql": "SELECT person_id FROM dmv.persons WHERE person_id = ANY($1) ORDER BY 1",
                                   "params": [[[4, 5], [6, 7]]], "purpose": "service_delivery"})
    assert _rows(r) == [[4], [5], [6], [7]]


def test_an_array_that_does_not_fit_is_a_parameter_error(client: Client) -> None:
    r = client.query("dmv_clerk", {"sql": "SELECT person_id FROM dmv.persons WHERE person_id = ANY($1)",
                                   "params": [["x"]], "purpose": "service_delivery"})
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == "invalid_parameter" and "$1" in r.json()["error"]["message"]
