"""YAML files whose errors name a line: compose the nodes, keep each node's mark, validate with pydantic.

Policy, requesters and settings files share this module, so every operator error reads the same::

    policies/colorado-dmv.yaml:42: purposes.court_order.grants.pii: must be one of allow, redact, deny (got 'maybe')

Mapping keys are always taken as text (``on:`` stays the column ``on``, not ``True``); duplicate keys
are errors (PyYAML keeps the last one silently). Nothing here has side effects: a bad file raises
:class:`~gateway.errors.ConfigError` and the caller keeps what it had.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from gateway.errors import ConfigError

Loc = tuple[str | int, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class YamlDocument:
    """A parsed YAML document: plain data plus the 1-based line of every mapping key and list item."""

    path: str
    data: Any
    lines: Mapping[Loc, int] = field(default_factory=dict)
    digest: str = ""  # sha256 hex of the file bytes

    def line_of(self, loc: Iterable[str | int]) -> int | None:
        """The line of the deepest node on ``loc`` that exists in the file (None: not even the root)."""
        parts: list[str | int] = [p for p in loc if p != "[key]"]
        while True:
            line = self.lines.get(tuple(parts))
            if line is not None:
                return line
            if not parts:
                return None
            parts.pop()

    def where(self, loc: Iterable[str | int]) -> str:
        """``path:line`` for ``loc`` (``path`` alone when no line is known)."""
        line = self.line_of(loc)
        return f"{self.path}:{line}" if line else self.path

    def message(self, loc: Loc, text: str) -> str:
        """One error line: ``path:line: dotted.loc: text``."""
        dotted = ".".join(str(p) for p in loc if p != "[key]")
        return f"{self.where(loc)}: {dotted + ': ' if dotted else ''}{text}"


def read_yaml(path: str | Path) -> YamlDocument:
    """Read and parse a YAML file; raises ConfigError (never OSError or a YAML exception)."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{name}: cannot read: {exc.strerror or exc}") from None
    return parse_yaml(raw, name)


def parse_yaml(raw: bytes | str, path: str = "<string>") -> YamlDocument:
    """Parse one YAML document, keeping line numbers; an empty document is an empty mapping."""
    data_bytes = raw.encode() if isinstance(raw, str) else raw
    digest = hashlib.sha256(data_bytes).hexdigest()
    try:
        text = data_bytes.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    if _FAST is not None:  # libyaml: ~15x faster (every gateway start and CLI command reads the policy)
        try:
            return _parse(_FAST(text), text, path, digest)
        except Exception:  # noqa: BLE001 - the Python parser below words and places the error as always
            pass
    return _parse(yaml.SafeLoader(text), text, path, digest)


#: The libyaml-backed loader when PyYAML has it: same nodes, marks and constructors as SafeLoader.
_FAST: Any = getattr(yaml, "CSafeLoader", None)


def _parse(loader: Any, text: str, path: str, digest: str) -> YamlDocument:
    try:
        node = loader.get_single_node()
        lines: dict[Loc, int] = {}
        data = {} if node is None else _build(loader, node, (), lines, path)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark else path
        problem = exc.problem or exc.context or "invalid YAML"
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    finally:
        loader.dispose()
    if node is not None:
        lines.setdefault((), node.start_mark.line + 1)
    return YamlDocument(path=path, data=data, lines=lines, digest=digest)


def _build(loader: yaml.SafeLoader, node: yaml.Node, loc: Loc, lines: dict[Loc, int], path: str) -> Any:
    if isinstance(node, yaml.MappingNode):
        loader.flatten_mapping(node)  # resolve `<<` merge keys
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError(f"{path}:{key_node.start_mark.line + 1}: a mapping key must be a plain name")
            key = key_node.value
            if key in out:
                raise ConfigError(f"{path}:{key_node.start_mark.line + 1}: duplicate key {key!r}")
            lines[loc + (key,)] = key_node.start_mark.line + 1
            out[key] = _build(loader, value_node, loc + (key,), lines, path)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            lines[loc + (index,)] = item.start_mark.line + 1
            items.append(_build(loader, item, loc + (index,), lines, path))
        return items
    return loader.construct_object(node, deep=True)


def validate(doc: YamlDocument, model: type[M], *, what: str = "file") -> M:
    """Validate ``doc.data`` against ``model``; every error names its line. Raises ConfigError."""
    if not isinstance(doc.data, dict):
        raise ConfigError(f"{doc.where(())}: the {what} must be a mapping of keys, not {type(doc.data).__name__}")
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        raise ConfigError(format_errors(doc, exc)) from None


def format_errors(doc: YamlDocument, exc: ValidationError) -> str:
    """All pydantic errors of ``exc`` as ``path:line: loc: message`` lines, in file order."""
    found: list[tuple[int, str]] = []
    for err in exc.errors(include_url=False):
        loc: Loc = tuple(err["loc"])
        found.append((doc.line_of(loc) or 0, doc.message(loc, _explain(err))))
    found.sort(key=lambda item: item[0])
    return "\n".join(text for _, text in found)


def raise_errors(doc: YamlDocument, problems: list[tuple[Loc, str]]) -> None:
    """Raise one ConfigError for semantic problems found after validation (no-op when none)."""
    if problems:
        ordered = sorted(problems, key=lambda p: doc.line_of(p[0]) or 0)
        raise ConfigError("\n".join(doc.message(loc, text) for loc, text in ordered))


def _explain(err: Any) -> str:
    kind = err["type"]
    loc = err["loc"]
    if kind == "extra_forbidden":
        return f"unknown key {loc[-1]!r}" if loc else "unknown key"
    if kind == "missing":
        return "this key is required"
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        choices = expected.replace(" or ", ", ").replace("'", "")
        return f"must be one of {choices} (got {err['input']!r})"
    message = str(err["msg"]).removeprefix("Value error, ")
    message = message.replace("Input should be a valid tuple", "should be a list").replace("Input should be", "should be")
    if kind not in ("value_error",) and not isinstance(err.get("input"), (dict, list)):
        message = f"{message} (got {err['input']!r})"
    return message
