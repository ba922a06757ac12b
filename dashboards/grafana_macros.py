"""Grafana's PostgreSQL datasource, as far as turning a panel's raw SQL into the statement the
database runs: template variables, then the global SQL substitutions, then the macros.

Grafana does this in three places, in this order, and so does :func:`expand_sql`:

1. **The browser** (``templateSrv.replace``) substitutes template variables: ``$name``,
   ``${name}``, ``${name:format}`` and the old ``[[name]]`` / ``[[name:format]]``, plus the
   built-ins ``$__interval``, ``$__interval_ms``, ``$__from``/``$__to`` (epoch milliseconds, or
   ``${__from:date:iso}``/``:date:seconds``), ``$__range``, ``$__range_s``, ``$__range_ms``. A
   name it does not know (``$__timeFilter``, which is a macro) stays as it is.

   Values are formatted by the format named after the colon. Without one, the PostgreSQL
   datasource's own ``interpolateVariable`` decides: a multi-value (or include-All) variable's
   values are SQL literals, ``'a','b'``; a single-value variable's value goes in as it is,
   with ``'`` doubled. Here a ``str`` value is a single-value variable and any other sequence
   a multi-value selection (an All selection without a custom all value is the list of every
   option). A custom all value (:class:`CustomAllValue`) goes in raw, unformatted (except for
   the ``text`` and ``percentencode`` formats), and is then interpolated itself, as Grafana
   does.
2. **The server's SQL engine** (``sqleng.Interpolate``) replaces ``$__interval_ms``,
   ``$__interval`` (Go's ``gtime.FormatInterval``: ``15m``, ``1h``, ``1d``),
   ``$__unixEpochFrom()`` and ``$__unixEpochTo()``.
3. **The PostgreSQL macro engine** replaces every ``$__name(args)`` (arguments split at commas,
   spaces trimmed, no nested parentheses): ``$__time``, ``$__timeEpoch``, ``$__timeFilter``
   (``col BETWEEN '<from>' AND '<to>'``, RFC 3339 in UTC with Go's nanosecond trimming),
   ``$__timeFrom()``, ``$__timeTo()``, ``$__timeGroup(col, interval[, fill])`` (``time_bucket``
   on a TimescaleDB datasource, as ours is), ``$__timeGroupAlias``, ``$__unixEpochFilter``,
   ``$__unixEpochNanoFilter``, ``$__unixEpochNanoFrom()``, ``$__unixEpochNanoTo()``,
   ``$__unixEpochGroup``, ``$__unixEpochGroupAlias``. An unknown macro fails the query in
   Grafana; here it raises :class:`MacroError`. ``$__timeGroup`` directly followed by a comma
   gets ``AS "time"`` (Grafana's pre-5.3 compatibility).

Intervals in ``$__timeGroup`` are parsed like Grafana's ``gtime.ParseInterval``: Go durations
(``90s``, ``1h30m``) and ``Nd``/``Nw``; ``NM``/``Ny`` (calendar months and years) are counted back
from ``time_to`` here, where Grafana counts them back from its own clock.
"""

import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final

__all__ = [
    "CustomAllValue",
    "MacroError",
    "expand_sql",
    "format_interval",
    "parse_interval",
    "rfc3339nano",
]


class MacroError(ValueError):
    """A macro Grafana would refuse (unknown, or missing its arguments)."""


class CustomAllValue(str):
    """The custom all value of a variable whose All option is selected: inserted raw."""

    __slots__ = ()


VariableValue = str | Sequence[str]

# templateSrv's variableRegex: $name | [[name(:format)]] | ${name(.fieldPath)(:format)}
_VARIABLE: Final = re.compile(
    r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\$\{(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?\}"
)
# the PostgreSQL macro engine's sExpr: $identifier(anything but a closing parenthesis)
_MACRO: Final = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")
_GO_DURATION_PART: Final = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")
_PERIOD: Final = re.compile(r"^(\d+)([wdyM])$")
_GO_UNITS: Final = {
    "ns": Decimal("1e-9"),
    "us": Decimal("1e-6"),
    "µs": Decimal("1e-6"),
    "μs": Decimal("1e-6"),
    "ms": Decimal("1e-3"),
    "s": Decimal(1),
    "m": Decimal(60),
    "h": Decimal(3600),
}


# -- times and intervals as Grafana writes them -------------------------------------------------


def rfc3339nano(at: datetime) -> str:
    """``at`` in UTC as Go's ``time.RFC3339Nano``: ``2026-03-01T16:00:00Z``, fraction digits
    only when non-zero and without trailing zeros."""
    utc = _aware(at).astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    if utc.microsecond:
        text += "." + f"{utc.microsecond:06d}".rstrip("0")
    return text + "Z"


def format_interval(interval: timedelta) -> str:
    """Go's ``gtime.FormatInterval``: the largest of y (365 d), d, h, m, s, ms that fits,
    truncated; below a millisecond, ``1ms``."""
    micros = _micros(interval)
    for unit, size in (
        ("y", 365 * 86_400_000_000),
        ("d", 86_400_000_000),
        ("h", 3_600_000_000),
        ("m", 60_000_000),
        ("s", 1_000_000),
        ("ms", 1_000),
    ):
        if micros >= size:
            return f"{micros // size}{unit}"
    return "1ms"


def parse_interval(text: str, *, now: datetime) -> timedelta:
    """Go's ``gtime.ParseInterval``: ``Nd``, ``Nw``, ``NM``, ``Ny`` (months and years counted
    back from ``now``) or a Go duration (``1h30m``, ``1.5s``, ``250ms``)."""
    period = _PERIOD.match(text)
    if period:
        count, unit = int(period[1]), period[2]
        if unit == "d":
            return timedelta(days=count)
        if unit == "w":
            return timedelta(weeks=count)
        back = _months_back(_aware(now), count if unit == "M" else 12 * count)
        return _aware(now) - back
    return _go_duration(text)


def _go_duration(text: str) -> timedelta:
    """Go's ``time.ParseDuration``, to microseconds."""
    negative = text.startswith("-")
    body = text[1:] if text[:1] in ("+", "-") else text
    if body == "0":
        return timedelta(0)
    if not body:
        raise MacroError(f"invalid duration {text!r}")
    seconds = Decimal(0)
    position = 0
    while position < len(body):
        part = _GO_DURATION_PART.match(body, position)
        if part is None or part[1] in ("", "."):
            raise MacroError(f"invalid duration {text!r}")
        seconds += Decimal(part[1]) * _GO_UNITS[part[2]]
        position = part.end()
    micros = int(seconds * 1_000_000)
    return timedelta(microseconds=-micros if negative else micros)


def _months_back(at: datetime, months: int) -> datetime:
    index = at.year * 12 + at.month - 1 - months
    year, month = divmod(index, 12)
    day = at.day
    # Go's AddDate normalises 31 February to 3 March: days past the month's end carry over
    first = at.replace(year=year, month=month + 1, day=1)
    return first + timedelta(days=day - 1)


def _go_float(value: float) -> str:
    """A float64 as Go's ``%v`` prints it (shortest digits, ``%e`` style from 1e+06 up or
    below 1e-04)."""
    if value == 0:
        return "0"
    digits = Decimal(repr(value)).normalize()
    sign, mantissa, exponent = digits.as_tuple()
    assert isinstance(exponent, int)
    text_digits = "".join(map(str, mantissa))
    exp = len(text_digits) + exponent - 1
    prefix = "-" if sign else ""
    if exp < -4 or exp >= 6:
        head, tail = text_digits[0], text_digits[1:]
        return f"{prefix}{head}{'.' + tail if tail else ''}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    return prefix + format(digits.copy_abs(), "f")


# -- the three stages ---------------------------------------------------------------------------


def expand_sql(
    sql: str,
    *,
    time_from: datetime,
    time_to: datetime,
    interval: timedelta,
    variables: Mapping[str, str | Sequence[str]],
) -> str:
    """``sql`` as Grafana's PostgreSQL datasource (TimescaleDB enabled) sends it to the
    database for a dashboard time range ``[time_from, time_to]``, the panel's ``interval`` and
    the variables' current values (see the module docstring for how values are formatted)."""
    time_from, time_to = _aware(time_from), _aware(time_to)
    if time_to < time_from:
        raise ValueError("time_to is before time_from")
    text = interpolate_variables(
        sql, variables, time_from=time_from, time_to=time_to, interval=interval
    )
    text = _sql_engine_interpolate(text, time_from, time_to, interval)
    return _expand_macros(text, time_from, time_to)


def interpolate_variables(
    sql: str,
    variables: Mapping[str, VariableValue],
    *,
    time_from: datetime,
    time_to: datetime,
    interval: timedelta,
) -> str:
    """Stage 1: template variables and the browser's built-ins (see the module docstring)."""
    span = time_to - time_from
    span_ms = _micros(span) // 1000
    builtins: dict[str, Callable[[str | None], str]] = {
        "__interval": lambda _f: format_interval(interval),
        "__interval_ms": lambda _f: str(_micros(interval) // 1000),
        "__from": lambda f: _format_time(time_from, f),
        "__to": lambda f: _format_time(time_to, f),
        "__range": lambda _f: f"{span_ms // 1000}s",
        "__range_s": lambda _f: str(span_ms // 1000),
        "__range_ms": lambda _f: str(span_ms),
    }

    def replace(match: re.Match[str], depth: int = 0) -> str:
        name = match[1] or match[2] or match[4]
        fmt = match[3] or match[6]
        if name in variables:
            value = variables[name]
            if isinstance(value, CustomAllValue) and fmt not in ("text", "percentencode"):
                if depth > 0:
                    return str(value)
                return _VARIABLE.sub(lambda m: replace(m, depth + 1), str(value))
            return _format_value(value, fmt)
        if name in builtins:
            return builtins[name](fmt)
        return match[0]

    return _VARIABLE.sub(replace, sql)


def _sql_engine_interpolate(
    sql: str, time_from: datetime, time_to: datetime, interval: timedelta
) -> str:
    """Stage 2: ``sqleng.Interpolate``."""
    sql = sql.replace("$__interval_ms", str(_micros(interval) // 1000))
    sql = sql.replace("$__interval", format_interval(interval))
    sql = sql.replace("$__unixEpochFrom()", str(_epoch_seconds(time_from)))
    return sql.replace("$__unixEpochTo()", str(_epoch_seconds(time_to)))


def _expand_macros(sql: str, time_from: datetime, time_to: datetime) -> str:
    """Stage 3: the PostgreSQL macro engine (TimescaleDB on)."""

    def replace(match: re.Match[str]) -> str:
        name = match[1]
        if name == "__timeGroup":
            at = sql.find(match[0])
            end = at + len(match[0])
            if at >= 0 and end < len(sql) and sql[end] == ",":
                name = "__timeGroupAlias"
        args = [arg.strip(" ") for arg in match[2].split(",")]
        return _macro(name, args, time_from, time_to)

    return _MACRO.sub(replace, sql)


def _macro(name: str, args: list[str], time_from: datetime, time_to: datetime) -> str:
    # Go's strings.Split on "" gives one empty argument, so len(args) is never 0; Grafana
    # checks len(args) == 0 for a column, which an empty argument passes, and so do we
    column = args[0]
    if name == "__time":
        return f'{column} AS "time"'
    if name == "__timeEpoch":
        return f'extract(epoch from {column}) as "time"'
    if name == "__timeFilter":
        return f"{column} BETWEEN '{rfc3339nano(time_from)}' AND '{rfc3339nano(time_to)}'"
    if name == "__timeFrom":
        return f"'{rfc3339nano(time_from)}'"
    if name == "__timeTo":
        return f"'{rfc3339nano(time_to)}'"
    if name in ("__timeGroup", "__timeGroupAlias"):
        seconds = _group_seconds(name, args, time_to)
        alias = ' AS "time"' if name == "__timeGroupAlias" else ""
        return f"time_bucket('{seconds:.3f}s',{column}){alias}"
    if name == "__unixEpochFilter":
        start, end = _epoch_seconds(time_from), _epoch_seconds(time_to)
        return f"{column} >= {start} AND {column} <= {end}"
    if name == "__unixEpochNanoFilter":
        start, end = _epoch_nanos(time_from), _epoch_nanos(time_to)
        return f"{column} >= {start} AND {column} <= {end}"
    if name == "__unixEpochNanoFrom":
        return str(_epoch_nanos(time_from))
    if name == "__unixEpochNanoTo":
        return str(_epoch_nanos(time_to))
    if name in ("__unixEpochGroup", "__unixEpochGroupAlias"):
        width = _go_float(_group_seconds(name, args, time_to))
        alias = ' AS "time"' if name == "__unixEpochGroupAlias" else ""
        return f"floor(({column})/{width})*{width}{alias}"
    raise MacroError(f"unknown macro {name!r}")


def _group_seconds(name: str, args: list[str], now: datetime) -> float:
    if len(args) < 2:
        raise MacroError(f"macro {name} needs time column and interval and optional fill value")
    if len(args) == 3 and not _valid_fill(args[2]):
        raise MacroError(f"error parsing fill value {args[2]}")
    try:
        interval = parse_interval(args[1].strip("'"), now=now)
    except MacroError as exc:
        raise MacroError(f"error parsing interval {args[1]}") from exc
    return interval.total_seconds()


def _valid_fill(fill: str) -> bool:
    if fill in ("NULL", "previous"):
        return True
    try:
        float(fill)
    except ValueError:
        return False
    return True


# -- variable formats ---------------------------------------------------------------------------


def _format_value(value: VariableValue, fmt: str | None) -> str:
    values = [value] if isinstance(value, str) else list(value)
    multi = not isinstance(value, str)
    if fmt is None:
        # the PostgreSQL datasource's interpolateVariable
        if multi:
            return ",".join(_quote_literal(v) for v in values)
        return values[0].replace("'", "''")
    formatter = _FORMATS.get(fmt, _glob)
    return formatter(values, multi)


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _glob(values: list[str], multi: bool) -> str:
    return "{" + ",".join(values) + "}" if multi and len(values) > 1 else ",".join(values)


def _regex(values: list[str], multi: bool) -> str:
    escaped = [re.sub(r"[\\^$*+?.()|{}\[\]/]", lambda m: "\\" + m[0], v) for v in values]
    return "(" + "|".join(escaped) + ")" if multi and len(values) > 1 else "|".join(escaped)


def _json(values: list[str], multi: bool) -> str:
    return json.dumps(values if multi else values[0], ensure_ascii=False, separators=(",", ":"))


_FORMATS: Final[dict[str, Callable[[list[str], bool], str]]] = {
    "sqlstring": lambda vs, _m: ",".join(_quote_literal(v) for v in vs),
    "singlequote": lambda vs, _m: ",".join("'" + v.replace("'", "\\'") + "'" for v in vs),
    "doublequote": lambda vs, _m: ",".join('"' + v.replace('"', '\\"') + '"' for v in vs),
    "csv": lambda vs, _m: ",".join(vs),
    "raw": lambda vs, _m: ",".join(vs),
    "text": lambda vs, _m: " + ".join(vs),
    "pipe": lambda vs, _m: "|".join(vs),
    "json": _json,
    "regex": _regex,
    "glob": _glob,
}


def _format_time(at: datetime, fmt: str | None) -> str:
    millis = _epoch_nanos(at) // 1_000_000
    if fmt in (None, "date:ms"):
        return str(millis)
    if fmt == "date:seconds":
        return str(millis // 1000)
    if fmt in ("date", "date:iso"):
        utc = at.astimezone(UTC)
        return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
    raise MacroError(f"unsupported time format {fmt!r}")


# -- helpers ------------------------------------------------------------------------------------


def _aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"times must be timezone-aware, got naive {at.isoformat()}")
    return at


def _micros(delta: timedelta) -> int:
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _epoch_nanos(at: datetime) -> int:
    return _micros(at.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)) * 1000


def _epoch_seconds(at: datetime) -> int:
    # Go's Time.Unix() floors
    return _epoch_nanos(at) // 1_000_000_000
