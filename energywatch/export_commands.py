"""``energywatch export``: a subject's rollups over a period, as CSV or JSON, for reports.

One row per window and energy type, ordered by period start then energy type, with these
columns (CSV header and JSON keys alike):

``subject_kind, subject, energy_type, window, period_start, tce, tce_counted, tce_equivalent,
physical_quantity, physical_unit, readings, completeness, corrections, final``

- ``period_start``: ISO 8601 in China Standard Time (``2026-03-01T00:00:00+08:00``).
- tce columns and ``physical_quantity``: exactly as stored (numeric, each reading already
  rounded to 1e-9 t), never through a float. In JSON they are **strings** ("12.345678901"):
  a JSON number would be read as a double by most parsers (JavaScript, spreadsheets), which
  is the rounding this avoids; ``Decimal(text)`` gives the stored value back. Counts are JSON
  integers, ``final`` a boolean, missing values ``null`` (CSV: empty).
- ``physical_quantity``/``physical_unit`` are empty for ``all``, whose types differ in unit.
- ``completeness``: covered seconds / (window × meters expected), cut (not rounded) to four
  decimals, so 0.9000 really is 90%. Meters expected: 1 for a meter; for a unit, its meters of
  that energy type the ledger heard from in the 31 days before the period or during it. Empty
  for counties, cities and industries: rollups do not know how many meters they should have.
  A window that is not final may still be filling.
- ``final``: the stream's watermark has passed the window's end (``storage/rollup_queries.py``).

CSV is UTF-8 with a header row and CRLF line ends (RFC 4180); ``--excel`` adds a byte-order
mark, without which Excel reads UTF-8 as the local code page and garbles Chinese names.
"""

import asyncio
import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_FLOOR, Decimal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Final

import click
import psycopg
import typer
from rich.console import Console
from rich.markup import escape

from contracts.identifiers import CHINA_STANDARD_TIME
from contracts.readings import EnergyType
from energywatch.settings import Settings
from storage.rollup_queries import (
    ALL_ENERGY_TYPES,
    ExportPeriod,
    RollupRow,
    SubjectKind,
    completeness_ratio,
    meters_by_energy_type,
    rollups,
)
from stream.windows import WindowSize

console = Console(stderr=True)

COLUMNS: Final = (
    "subject_kind",
    "subject",
    "energy_type",
    "window",
    "period_start",
    "tce",
    "tce_counted",
    "tce_equivalent",
    "physical_quantity",
    "physical_unit",
    "readings",
    "completeness",
    "corrections",
    "final",
)
_RATIO_STEP: Final = Decimal("0.0001")
_NAMED_BY: Final = {
    SubjectKind.UNIT: "credit code",
    SubjectKind.COUNTY: "division code",
    SubjectKind.CITY: "name",
    SubjectKind.INDUSTRY: "name",
    SubjectKind.METER: "id",
}
ENERGY_TYPE_CHOICES: Final = (*(t.value for t in EnergyType), ALL_ENERGY_TYPES)

#: one exported value: text, an exact number as text, a count, a flag, or nothing
Value = str | int | bool | None


class ExportFormat(StrEnum):
    CSV = "csv"
    JSON = "json"


def export_records(
    rows: Iterable[RollupRow], meters: Mapping[str, int] | None
) -> list[dict[str, Value]]:
    """The rows as exported, one mapping per row with :data:`COLUMNS` as keys. ``meters``:
    the meters expected per energy type (None when unknown: no completeness)."""
    records = []
    for row in rows:
        ratio = completeness_ratio(row, meters)
        records.append(
            {
                "subject_kind": row.subject_kind.value,
                "subject": row.subject,
                "energy_type": row.energy_type,
                "window": row.window_size.value,
                "period_start": row.period_start.astimezone(CHINA_STANDARD_TIME).isoformat(),
                "tce": _exact(row.tce),
                "tce_counted": _exact(row.tce_counted),
                "tce_equivalent": _exact(row.tce_equivalent),
                "physical_quantity": _exact(row.physical_quantity),
                "physical_unit": row.physical_unit,
                "readings": row.readings,
                "completeness": None if ratio is None else _exact(_cut(ratio)),
                "corrections": row.corrections,
                "final": row.final,
            }
        )
    return records


def _exact(value: Decimal | None) -> str | None:
    # 'f' never switches to exponent notation (a stored 0E-9 prints as 0.000000000)
    return None if value is None else format(value, "f")


def _cut(ratio: Decimal) -> Decimal:
    return ratio.quantize(_RATIO_STEP, rounding=ROUND_FLOOR)


def to_csv(records: Sequence[Mapping[str, Value]]) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for record in records:
        writer.writerow(_csv_cell(record[column]) for column in COLUMNS)
    return out.getvalue()


def _csv_cell(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def to_json(records: Sequence[Mapping[str, Value]]) -> str:
    return json.dumps(list(records), ensure_ascii=False, indent=2) + "\n"


def encode(records: Sequence[Mapping[str, Value]], output: ExportFormat, excel: bool) -> bytes:
    text = to_csv(records) if output is ExportFormat.CSV else to_json(records)
    return text.encode("utf-8-sig" if excel else "utf-8")


def _subject(
    unit: str | None, county: str | None, city: str | None, industry: str | None, meter: str | None
) -> tuple[SubjectKind, str]:
    given = [
        (kind, value)
        for kind, value in (
            (SubjectKind.UNIT, unit),
            (SubjectKind.COUNTY, county),
            (SubjectKind.CITY, city),
            (SubjectKind.INDUSTRY, industry),
            (SubjectKind.METER, meter),
        )
        if value is not None
    ]
    if len(given) != 1:
        raise typer.BadParameter(
            "give exactly one of --unit, --county, --city, --industry or --meter"
            + (f" (got {', '.join('--' + k.value for k, _ in given)})" if given else "")
        )
    kind, value = given[0]
    if not value.strip():
        raise typer.BadParameter(f"--{kind.value} is empty")
    return kind, value.strip()


async def fetch(
    settings: Settings,
    kind: SubjectKind,
    subject: str,
    window: WindowSize,
    period: ExportPeriod,
    energy_type: str | None,
) -> list[dict[str, Value]]:
    """The export of one subject and period, read from the database ``settings`` names."""
    async with await psycopg.AsyncConnection.connect(
        settings.database_url.get_secret_value()
    ) as conn:
        await conn.set_read_only(True)
        rows = await rollups(
            conn,
            kind,
            subject,
            window,
            period.start,
            period.end,
            energy_type,
            topic=settings.readings_topic,
            consumer=settings.worker_app_id,
        )
        meters = None
        if rows and kind in (SubjectKind.METER, SubjectKind.UNIT):
            meters = await meters_by_energy_type(conn, kind, subject, period.start, period.end)
    return export_records(rows, meters)


def export(
    *,
    unit: Annotated[
        str | None, typer.Option(help="A unit's unified social credit code", show_default=False)
    ] = None,
    county: Annotated[
        str | None, typer.Option(help="A county's division code", show_default=False)
    ] = None,
    city: Annotated[str | None, typer.Option(help="A city's name", show_default=False)] = None,
    industry: Annotated[
        str | None, typer.Option(help="An industry's name", show_default=False)
    ] = None,
    meter: Annotated[str | None, typer.Option(help="A meter's id", show_default=False)] = None,
    first_day: Annotated[
        str, typer.Option("--from", help="First day, China Standard Time: YYYY-MM-DD")
    ],
    last_day: Annotated[
        str, typer.Option("--to", help="Last day (included), China Standard Time: YYYY-MM-DD")
    ],
    window: Annotated[
        WindowSize, typer.Option(help="Window size: windows starting in the period")
    ] = WindowSize.DAY,
    energy_type: Annotated[
        str | None,
        typer.Option(
            help=f"One of {', '.join(ENERGY_TYPE_CHOICES)} (default: every type, a row each)",
            show_default=False,
        ),
    ] = None,
    output: Annotated[ExportFormat, typer.Option("--format", help="Output format")] = (
        ExportFormat.CSV
    ),
    out: Annotated[
        Path | None, typer.Option(help="Write here instead of standard output", show_default=False)
    ] = None,
    excel: Annotated[
        bool, typer.Option(help="Start with a UTF-8 byte-order mark, for Excel")
    ] = False,
) -> None:
    """Export a unit's, county's, city's, industry's or meter's rollups over CST days, as CSV
    or JSON: the numbers for reports, exactly as stored.

    Example: `energywatch export --unit 91140800MA0K123456 --from 2026-03-01 --to 2026-03-31`
    """
    kind, subject = _subject(unit, county, city, industry, meter)
    try:
        period = ExportPeriod.parse(first_day, last_day)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--from/--to") from exc
    if energy_type is not None and energy_type not in ENERGY_TYPE_CHOICES:
        raise typer.BadParameter(
            f"{energy_type!r}: use one of {', '.join(ENERGY_TYPE_CHOICES)}",
            param_hint="--energy-type",
        )
    settings = Settings.load()
    what = escape(
        f"{kind.value} {subject}, {window.value} windows starting "
        f"{period.first_day} to {period.last_day} (CST)"
        + (f", energy type {energy_type}" if energy_type else "")
    )
    try:
        records = asyncio.run(fetch(settings, kind, subject, window, period, energy_type))
    except psycopg.errors.UndefinedTable as exc:
        console.print(
            "[red]the database has no rollup tables yet[/red]: run `energywatch worker` once "
            "(it applies the migrations) and let it process readings",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from exc
    except psycopg.OperationalError as exc:
        console.print(
            f"[red]cannot read the database[/red]: {escape(str(exc))}\n"
            "Is it running? `energywatch stack status` shows it, `energywatch stack up` starts "
            "it; EW_DATABASE_URL says where it is.",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1) from exc
    if not records:
        hint = (
            " Monthly windows start on the 1st: give --from as a 1st."
            if window is WindowSize.MONTH and period.first_day.day != 1
            else ""
        )
        console.print(
            f"[red]no rollups[/red] for {what}.{hint} Check the {kind.value} "
            f"{_NAMED_BY[kind]} and the "
            "period; `energywatch stack status` shows whether the database and Kafka are running; "
            "the worker (`energywatch worker`) fills the rollups as readings arrive.",
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(1)
    data = encode(records, output, excel)
    if out is None:
        stdout = click.get_binary_stream("stdout")
        stdout.write(data)
        stdout.flush()
    else:
        _write_atomically(out, data)
    pending = sum(1 for r in records if not r["final"])
    console.print(
        f"{len(records)} rows: {what}"
        + (f" -> {escape(str(out))}" if out else "")
        + (f"; {pending} not final yet (the stream has not passed them)" if pending else ""),
        highlight=False,
        soft_wrap=True,
    )


def _write_atomically(path: Path, data: bytes) -> None:
    """Write a sibling file, then rename it: a report never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    partial = Path(name)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
