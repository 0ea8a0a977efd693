"""Bind parameters as the request log keeps them (gateway.audit.params)."""

from __future__ import annotations

from gateway.audit.params import bind_params


def test_text_and_known_binary_types_are_decoded() -> None:
    values = [b"42", (7).to_bytes(4, "big", signed=True), (-3).to_bytes(8, "big", signed=True), "Zoë".encode(), None]
    assert bind_params(values, (0, 1, 1, 1, 0), (23, 23, 20, 25, 23)) == ("42", "7", "-3", "Zoë", None)


def test_one_format_for_all_and_unknown_binary_kept_as_bytes() -> None:
    raw = b"\x01\x02\x03"
    assert bind_params([raw, (5).to_bytes(2, "big")], (1,), (0, 21)) == (raw, "5")
    assert bind_params([b"x"], ()) == ("x",)  # no formats: text
    assert bind_params([(1).to_bytes(4, "big")], (1,), (20,)) == ((1).to_bytes(4, "big"),)  # width mismatch
