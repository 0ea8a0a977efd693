"""The skeleton cache's fast text checks say what their plain regular-expression definitions say:
the literal split (written so that the engine scans for its first character) splits as the
lookbehind form did, and the ``in`` checks for what is not plain agree with ``_NOT_PLAIN``."""

from __future__ import annotations

import random
import re

from gateway.plan import cache

REFERENCE = re.compile(r"('(?:[^']|'')*'|(?<![\w.$])\d+(?:\.\d+)?(?![\w.]))")


def test_literal_split_and_plain_check_agree_with_their_definitions() -> None:
    rng = random.Random(8)
    alphabet = "ab1'. 9$_x,=()\n-/*\"\\\x00é"
    texts = ["SELECT person_id FROM dmv.persons WHERE person_id = 4242", "x = 'it''s' AND y=1.5 AND z = t1.c2",
             "a1 = 12.5.3", "$1", "'unterminated", "1e5 .5 5. x.1 1x", ""]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16))) for _ in range(20000)]
    for text in texts:
        assert cache._LITERAL.split(text) == REFERENCE.split(text), text
        assert cache._is_plain(text) == (cache._NOT_PLAIN.search(text) is None), text
