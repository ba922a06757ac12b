"""Grafana's PostgreSQL macro and variable expansion (dashboards/grafana_macros.py), checked
against what Grafana's sources and documentation say it produces, and by round trips."""

from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboards.grafana_macros import (
    CustomAllValue,
    MacroError,
    expand_sql,
    format_interval,
    parse_interval,
    rfc3339nano,
)

FROM = datetime(2026, 3, 1, 16, 0, tzinfo=UTC)
TO = datetime(2026, 3, 15, 5, 20, 0, 500000, tzinfo=UTC)
HOUR = timedelta(hours=1)
instants = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
)
values = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


def expand(sql: str, **variables: object) -> str:
    return expand_sql(sql, time_from=FROM, time_to=TO, interval=HOUR, variables=variables)


def test_time_macros_expand_as_the_postgres_datasource_writes_them():
    assert expand("$__timeFilter(t)") == (
        "t BETWEEN '2026-03-01T16:00:00Z' AND '2026-03-15T05:20:00.5Z'"
    )
    assert expand("$__timeFrom() $__timeTo()") == (
        "'2026-03-01T16:00:00Z' '2026-03-15T05:20:00.5Z'"
    )
    assert expand("$__time(t) $__timeEpoch(t)") == 't AS "time" extract(epoch from t) as "time"'
    assert expand("$__unixEpochFilter(e)") == "e >= 1772380800 AND e <= 1773552000"


def test_time_group_is_a_time_bucket_and_takes_an_alias_before_a_comma():
    assert expand("SELECT $__timeGroupAlias(t, $__interval)") == (
        "SELECT time_bucket('3600.000s',t) AS \"time\""
    )
    assert expand("GROUP BY $__timeGroup(t, '15m')") == "GROUP BY time_bucket('900.000s',t)"
    # pre-5.3 compatibility: a comma right after the macro means "AS time"
    assert expand("SELECT $__timeGroup(t,'1d'), v") == (
        "SELECT time_bucket('86400.000s',t) AS \"time\", v"
    )
    assert expand("$__unixEpochGroup(e, 2592000s)") == "floor((e)/2.592e+06)*2.592e+06"


def test_interval_built_ins_and_global_substitutions():
    assert expand("$__interval $__interval_ms ${__interval}") == "1h 3600000 1h"
    assert expand("$__unixEpochFrom() $__unixEpochTo()") == "1772380800 1773552000"
    assert expand("$__from ${__to:date:seconds}") == "1772380800000 1773552000"


def test_variables_are_formatted_as_grafana_formats_them():
    assert expand("${c:sqlstring}", c=["a", "o'b"]) == "'a','o''b'"
    assert expand("${c:csv} [[c:pipe]] ${c:json}", c=["a", "b"]) == 'a,b a|b ["a","b"]'
    assert expand("${c:singlequote} ${c:doublequote}", c=["a'"]) == "'a\\'' \"a'\""
    # without a format the PostgreSQL datasource quotes multi-value selections only
    assert expand("$c = '$u'", c=["a", "b"], u="it's") == "'a','b' = 'it''s'"
    assert expand("${c:regex}", c=["a.b", "c"]) == "(a\\.b|c)"


def test_a_custom_all_value_goes_in_raw_and_unknown_names_stay():
    assert expand("${c:sqlstring} $c", c=CustomAllValue("'__all'")) == "'__all' '__all'"
    assert expand("${c:text}", c=CustomAllValue("'__all'")) == "'__all'"
    assert expand("$nope ${nope:csv} $__timeFrom") == "$nope ${nope:csv} $__timeFrom"


def test_an_unknown_macro_fails_the_query_as_in_grafana():
    with pytest.raises(MacroError):
        expand("SELECT $__nonsense(x)")
    with pytest.raises(MacroError):
        expand("SELECT $__timeGroup(t)")


@given(instants)
def test_rfc3339nano_reads_back_as_the_same_instant(at):
    text = rfc3339nano(at)
    assert text.endswith("Z")
    assert datetime.fromisoformat(text.replace("Z", "+00:00")) == at
    assert not text.split(".")[-1].rstrip("Z").endswith("0") or "." not in text


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from(["ms", "s", "m", "h"]))
def test_go_durations_parse_and_format_back(count, unit):
    parsed = parse_interval(f"{count}{unit}", now=TO)
    seconds = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit] * count
    assert parsed == timedelta(seconds=seconds)
    text = format_interval(parsed)
    # "Ny" is 365-day years to FormatInterval but calendar years to ParseInterval, as in Go
    if not text.endswith("y"):
        assert parse_interval(text, now=TO) <= parsed


@given(st.timedeltas(min_value=timedelta(milliseconds=1), max_value=timedelta(days=3650)))
def test_format_interval_truncates_to_its_largest_unit(interval):
    text = format_interval(interval)
    back = parse_interval(text.replace("y", "d") if text.endswith("y") else text, now=TO)
    if text.endswith("y"):
        back = timedelta(days=365 * int(text[:-1]))
    assert back <= interval
    assert int("".join(ch for ch in text if ch.isdigit())) >= 1


@pytest.mark.services
@settings(max_examples=60, deadline=None)
@given(st.lists(values, min_size=1, max_size=5))
def test_sqlstring_values_read_back_from_postgresql_unchanged(local_stack, chosen):
    sql = expand("SELECT ARRAY[${v:sqlstring}]::text[]", v=chosen)
    with psycopg.connect(local_stack.database_url.get_secret_value()) as conn:
        row = conn.execute(sql.encode()).fetchone()
    assert row is not None
    assert row[0] == chosen
