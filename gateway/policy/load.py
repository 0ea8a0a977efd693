"""Load a policy file into a :class:`~gateway.policy.policy.Policy`, or fail with line-numbered errors.

Loading is all or nothing: the file is parsed, validated and indexed before anything is returned,
so a caller that keeps its old Policy on :class:`~gateway.errors.ConfigError` changes nothing.
"""

from __future__ import annotations

from pathlib import Path

from gateway.policy.model import PolicyFile, semantic_problems
from gateway.policy.policy import Policy
from gateway.policy.yaml_lines import YamlDocument, parse_yaml, raise_errors, read_yaml, validate


def load_policy(path: str | Path) -> Policy:
    """Read, validate and index the policy file at ``path``; raises ConfigError naming each bad line."""
    return policy_from_document(read_yaml(path))


def parse_policy(text: str | bytes, source: str = "<policy>") -> Policy:
    """Like :func:`load_policy` for text already in memory (tests, ``check-policy`` on stdin)."""
    return policy_from_document(parse_yaml(text, source))


def policy_from_document(doc: YamlDocument) -> Policy:
    """Validate a parsed document as a policy file."""
    model = validate(doc, PolicyFile, what="policy file")
    raise_errors(doc, semantic_problems(model))
    return Policy.build(model, source=doc.path, digest=doc.digest)
