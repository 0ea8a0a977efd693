"""The policy and the example requesters ship in the package: found from any folder (issue 9)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.errors import ConfigError
from gateway.shipped import SHIPPED, locate


def test_default_names_resolve_to_the_shipped_copies_from_any_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert Path(locate("policies/colorado-dmv.yaml")) == SHIPPED / "colorado-dmv.yaml"
    assert Path(locate("policies/requesters.example.yaml")).read_text().startswith(
        (SHIPPED / "requesters.example.yaml").read_text()[:40])


def test_a_file_in_the_working_folder_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "colorado-dmv.yaml").write_text("# a DBA's own copy\n")
    assert locate("policies/colorado-dmv.yaml") == "policies/colorado-dmv.yaml"


def test_a_missing_file_names_every_place_looked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as err:
        locate("policies/no-such.yaml", "policy file")
    assert "policy file policies/no-such.yaml not found" in str(err.value)
    assert str(tmp_path / "policies/no-such.yaml") in str(err.value) and str(SHIPPED) in str(err.value)
    with pytest.raises(ConfigError, match=r"looked at /nowhere/p.yaml\)"):
        locate("/nowhere/p.yaml")
