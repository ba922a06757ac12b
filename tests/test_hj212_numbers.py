"""HJ 212 values as numbers: the fast parser accepts exactly the ASCII number grammar."""

import math
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.hj212.decoded import NUMBER, parse_number

ASCII_NUMBER = re.compile(NUMBER.pattern, re.ASCII)
tricky = ["inf", "nan", "1_0", " 1", "1 ", "\u00a01", "１", "٠", "0x1", "1e999", "-0", ".5", "5."]


def reference(text: str) -> float | ValueError | None:
    if not text:
        return None
    if ASCII_NUMBER.fullmatch(text) and math.isfinite(float(text)):
        return float(text)
    return ValueError()


@settings(max_examples=3000)
@given(
    st.one_of(
        st.text(max_size=12), st.from_regex(ASCII_NUMBER, fullmatch=True), st.sampled_from(tricky)
    )
)
def test_parse_number_accepts_exactly_the_ascii_number_grammar(text):
    expected = reference(text)
    if isinstance(expected, ValueError):
        try:
            parse_number(text)
        except ValueError:
            return
        raise AssertionError(f"{text!r} should be refused")
    assert parse_number(text) == expected
