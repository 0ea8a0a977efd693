"""Run a fuzz target under atheris (libFuzzer): ``python tests/fuzz/_atheris.py fuzz_X [libFuzzer flags] CORPUS``.

Each target module defines ``one_input(data: bytes)`` (importable without atheris, so its
``REGRESSIONS`` run in the plain suite) and ``seeds()`` (starting inputs the runner writes into the
corpus). The gateway's compiled hot path is bypassed (``GATEWAY_PURE_PYTHON=1``, set by the runner)
so that atheris can instrument the codec's Python and steer by its coverage.
"""

from __future__ import annotations

import importlib
import os
import sys

#: What each target instruments (coverage-guided): the gateway's code, and sqlglot's for the analyzer.
INSTRUMENT = {"fuzz_wire": ("gateway.wire",), "fuzz_auth": ("gateway.wire", "gateway.identity", "gateway.frontdoor"),
              "fuzz_sql": ("gateway", "sqlglot")}


def main() -> None:
    import atheris

    target = sys.argv.pop(1)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    # Only what is imported inside this block is instrumented: the rest (asyncpg, structlog...) is not
    # under test and instrumenting it would cost tens of seconds of start-up.
    with atheris.instrument_imports(include=list(INSTRUMENT[target])):
        module = importlib.import_module(target)
    if hasattr(module, "prepare"):
        module.prepare()
    atheris.Setup(sys.argv, module.one_input)
    atheris.Fuzz()


class Draw:
    """Choices read from the fuzzer's bytes (0 once they run out): the same bytes give the same input."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            return 0
        self.pos += 1
        return self.data[self.pos - 1]

    def below(self, n: int) -> int:
        return self.byte() % n if n > 0 else 0

    def pick(self, items: list[str] | tuple[str, ...]) -> str:
        return items[self.below(len(items))]

    def rest_text(self, limit: int) -> str:
        chunk = self.data[self.pos:self.pos + limit]
        self.pos += len(chunk)
        return chunk.decode("utf-8", "replace")


if __name__ == "__main__":
    main()
