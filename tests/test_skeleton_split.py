"""The skeleton cache's fast text checks say what their plain regular-expression definitions say:
the literal split (``hot.split_literals``, a scanner written by hand, compiled) splits as the regular
expression that defines it, in linear time, and the ``in`` checks for what is not plain agree with
``_NOT_PLAIN``."""

from __future__ import annotations

import random
import re

from hypothesis import given, settings, strategies as st

from gateway.plan import cache, hot

REFERENCE = re.compile(r"('(?:[^']|'')*'|(?<![\w.$])\d+(?:\.\d+)?(?![\w.]))")


def test_literal_split_and_plain_check_agree_with_their_definitions() -> None:
    rng = random.Random(8)
    alphabet = "ab1'. 9$_x,=()\n-/*\"\\\x00é١²"  # an Arabic-Indic digit is \\d to re, a superscript two \\w
    texts = ["SELECT person_id FROM dmv.persons WHERE person_id = 4242", "x = 'it''s' AND y=1.5 AND z = t1.c2",
             "a1 = 12.5.3", "$1", "'unterminated", "1e5 .5 5. x.1 1x", ""]
    texts += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 16))) for _ in range(20000)]
    for text in texts:
        assert hot.split_literals(text) == REFERENCE.split(text), text
        assert cache._is_plain(text) == (cache._NOT_PLAIN.search(text) is None), text


#: pieces of SQL texts: keywords, names, numbers and strings of every plain and odd form
_PIECES = ["SELECT ", "x", " FROM dmv.persons", " WHERE ", "person_id", " = ", "=", "42", "4.5", "4.", ".5", "1e3",
           "t1.c2", "$1", "'a'", "'it''s'", "''", "'", "''''", "'x", " AND ", "(", ")", ",", "::int", "-", "_9", "9_",
           "é", "١٢", "²", "\n", " ", "..", "0.0.1", "x9", "9x"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=14))
def test_the_scanner_splits_random_sql_as_the_expression(pieces: list[str]) -> None:
    text = "".join(pieces)
    assert hot.split_literals(text) == REFERENCE.split(text)


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from("0123456789'.$_ ax\né١²"), max_size=24))
def test_the_scanner_splits_random_text_as_the_expression(text: str) -> None:
    assert hot.split_literals(text) == REFERENCE.split(text)


def test_the_literal_split_takes_linear_time() -> None:
    """The expression the cache used before, ``'(?:[^']+|'')*'``, backtracked exponentially on an
    unterminated string (1 s for ``SELECT '`` and 24 letters, on the event loop); the scanner reads each
    character a bounded number of times: every text below, 4,000 characters, splits in well under a second."""
    import time

    for text in ("SELECT '" + "ab" * 2000, "SELECT " + "'" * 4001, "SELECT " + "'" * 4000, "x = '" + "a''" * 1300,
                 "''x" * 1300, "1" * 4000 + "x", ("1." * 2000) + "5x", "x = '" + "a" * 4000):
        started = time.process_time()
        assert hot.split_literals(text) == REFERENCE.split(text), text[:20]
        assert time.process_time() - started < 0.5, text[:20]


def test_a_long_number_is_read_in_linear_time() -> None:
    """An integer key's value (a literal, or a parameter bound at admit) of many digits followed by
    something else: the number expression of plan/keys.py matched it two ways (quadratic: 17 s for
    16,000 digits)."""
    import time

    from gateway.plan.keys import canonical

    for text, kind, expected in (("0" + "1" * 20000 + "x", "int", None), ("1" * 20000 + ".5x", "numeric", None),
                                 ("0" * 20000 + "9", "int", "9"), ("0" * 20000 + "9.000", "numeric", "9")):
        started = time.process_time()
        assert canonical(text, kind) == (text if expected is None else expected)
        assert time.process_time() - started < 2.0, (text[:20], kind)
