"""The OpenAPI document is true: every route is in it and every documented path is a route; its
examples validate against their schemas; every error code the code can answer with is documented."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from gateway.frontdoor.http.app import build_app, route_paths
from gateway.frontdoor.http.errors import ERROR_CODES
from gateway.frontdoor.http.openapi import document

jsonschema_rs = pytest.importorskip("jsonschema_rs")


class _NoGateway:
    """build_app only stores the gateway; the document does not depend on it."""

    settings = None
    audit = None


def test_every_route_is_documented_and_back() -> None:
    doc = document()
    documented = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert route_paths(build_app(_NoGateway())) == documented


def _examples(node: Any, where: str = "") -> list[tuple[str, dict[str, Any], Any]]:
    out = []
    if isinstance(node, dict):
        if "schema" in node and "example" in node:
            out.append((where, node["schema"], node["example"]))
        for key, value in node.items():
            out += _examples(value, f"{where}/{key}")
    elif isinstance(node, list):
        for n, value in enumerate(node):
            out += _examples(value, f"{where}/{n}")
    return out


def test_examples_validate() -> None:
    doc = document()
    examples = _examples(doc["paths"])
    assert len(examples) >= 15
    for where, schema, example in examples:
        validator = jsonschema_rs.Draft202012Validator({**schema, "components": doc["components"]})
        errors = [str(e) for e in validator.iter_errors(example)]
        assert not errors, f"{where}: {errors}"


def test_error_codes_are_documented() -> None:
    """Every code raised in the package is in ERROR_CODES, and docs/http-api.md lists them all."""
    package = Path(__file__).resolve().parent.parent / "gateway" / "frontdoor" / "http"
    used = set()
    for path in package.glob("*.py"):
        used |= set(re.findall(r'ApiError\(\s*\d{3},\s*"([a-z_]+)"', path.read_text()))
    assert used and used <= set(ERROR_CODES)
    guide = (Path(__file__).resolve().parent.parent / "docs" / "http-api.md").read_text()
    missing = [code for code in ERROR_CODES if f"`{code}`" not in guide]
    assert not missing, f"codes not in docs/http-api.md: {missing}"
