"""Read the startup packet's ``options`` (what ``PGOPTIONS`` sets) into ``(name, value)`` pairs.

Both forms PostgreSQL accepts are read: ``-c name=value`` (also ``-cname=value``) and
``--name=value``; backslash escapes a space, as libpq writes it.

>>> parse_options(r"-c gateway.purpose=court_order --gateway.order_reference=2026CV001234 -cDateStyle=ISO")
[('gateway.purpose', 'court_order'), ('gateway.order_reference', '2026CV001234'), ('DateStyle', 'ISO')]
>>> parse_options(r"-c gateway.legal_citation=C.R.S.\\ 24-74-105")
[('gateway.legal_citation', 'C.R.S. 24-74-105')]
"""

from __future__ import annotations


class OptionsError(ValueError):
    """The options string holds something other than ``-c name=value`` / ``--name=value``."""


def split_words(text: str) -> list[str]:
    """Split on unescaped whitespace; ``\\`` escapes the next character."""
    words: list[str] = []
    current: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch.isspace():
            if current:
                words.append("".join(current))
                current = []
        else:
            current.append(ch)
    if current:
        words.append("".join(current))
    return words


def _pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise OptionsError(f"invalid option {text!r}: expected name=value")
    return name.strip().replace("-", "_") if not name.startswith("gateway.") else name.strip(), value


def parse_options(text: str) -> list[tuple[str, str]]:
    """The settings named in an ``options`` startup parameter, in order."""
    words = split_words(text)
    out: list[tuple[str, str]] = []
    i = 0
    while i < len(words):
        word = words[i]
        if word == "-c":
            if i + 1 >= len(words):
                raise OptionsError("-c without name=value")
            out.append(_pair(words[i + 1]))
            i += 2
            continue
        if word.startswith("--"):
            out.append(_pair(word[2:]))
        elif word.startswith("-c"):
            out.append(_pair(word[2:]))
        else:
            raise OptionsError(f"unsupported command-line option {word!r} (only -c name=value and --name=value)")
        i += 1
    return out
