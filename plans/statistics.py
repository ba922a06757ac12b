"""Statistics that are entered, not metered: regional GDP and value added (the denominators of
the plans' intensity targets), one CSV row per region and period.

Columns (``COLUMNS``): ``region`` (GB/T 2260 code of a city or county the plans cover),
``year``, ``period`` (``annual`` or ``Q1``..``Q4``), ``gdp_100m_yuan`` (current prices, 亿元),
``gdp_2020_prices_100m_yuan`` (comparable 2020 prices, what intensity is computed on),
``above_scale_industry_value_added_100m_yuan`` (规模以上工业增加值), ``source``. Quarterly
figures are year to date (1-3月, 1-6月, ...), as the statistics bureaux publish them. Empty
cells mean "not published".

Lines starting with ``#`` are comments; ``# status: illustrative`` marks a file of invented
numbers for demos (``example-*.csv``), which nothing may take for statistics.
"""

import csv
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from energywatch.config_files import ConfigFileError
from plans.register import Finding, Located, format_location, inconsistent, located_errors

COLUMNS: Final = (
    "region",
    "year",
    "period",
    "gdp_100m_yuan",
    "gdp_2020_prices_100m_yuan",
    "above_scale_industry_value_added_100m_yuan",
    "source",
)
_OPTIONAL: Final = {"gdp_2020_prices_100m_yuan", "above_scale_industry_value_added_100m_yuan"}
_ILLUSTRATIVE: Final = "# status: illustrative"
_QUARTERS: Final = ("Q1", "Q2", "Q3", "Q4")

Amount = Annotated[float, Field(gt=0, allow_inf_nan=False)]
Period = Literal["annual", "Q1", "Q2", "Q3", "Q4"]


class StatisticsRow(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    region: str = Field(pattern=r"^\d{6}$")
    year: int = Field(ge=2000, le=2100)
    period: Period
    gdp_100m_yuan: Amount
    gdp_2020_prices_100m_yuan: Amount | None = None
    above_scale_industry_value_added_100m_yuan: float | None = Field(
        default=None, ge=0, allow_inf_nan=False
    )
    #: One line, no surrounding blanks (a CSV cell is stripped when read).
    source: str = Field(pattern=r"^\S(?:.*\S)?$")

    @model_validator(mode="after")
    def _part_not_above_whole(self) -> Self:
        value_added = self.above_scale_industry_value_added_100m_yuan
        if value_added is not None and value_added > self.gdp_100m_yuan:
            raise ValueError("industry value added above GDP: check the units (亿元) and columns")
        return self


def _name(key: tuple[str, int, str]) -> str:
    region, year, period = key
    return f"{region} {year} {period}"


class StatisticsTable(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rows: tuple[StatisticsRow, ...]
    #: Invented numbers for a demo (``# status: illustrative``), not statistics.
    illustrative: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[Located] = []
        seen: dict[tuple[str, int, str], int] = {}
        for i, row in enumerate(self.rows):
            key = (row.region, row.year, row.period)
            if key in seen:
                problems.append((("rows", i, "period"), f"a second row for {_name(key)}: keep one"))
            seen.setdefault(key, i)
        # year to date: a later quarter includes the earlier ones
        for (region, year, period), i in seen.items():
            for quarter in _QUARTERS[: _QUARTERS.index(period)] if period in _QUARTERS else ():
                j = seen.get((region, year, quarter))
                if j is not None and self.rows[j].gdp_100m_yuan > self.rows[i].gdp_100m_yuan:
                    problems.append(
                        (
                            ("rows", i, "gdp_100m_yuan"),
                            f"below {_name((region, year, quarter))}: quarterly figures are "
                            "year to date (1-3月, 1-6月, ...), so they never fall within a year",
                        )
                    )
        if problems:
            raise inconsistent(problems)
        return self

    def row(self, region: str, year: int, period: Period = "annual") -> StatisticsRow | None:
        """The figures for ``region`` in ``year`` (year to date at ``period``), if entered."""
        return next(
            (r for r in self.rows if (r.region, r.year, r.period) == (region, year, period)),
            None,
        )


@dataclass(frozen=True)
class ParsedStatistics:
    """A CSV file split into records, each with the line it came from."""

    records: list[dict[str, str]]
    lines: list[int]
    header_line: int
    illustrative: bool
    problems: list[Located] = field(default_factory=list)

    def line_of(self, location: tuple[str | int, ...]) -> int:
        """The file line of a problem at ``location`` (``rows[i]...`` or the header)."""
        match location:
            case ("rows", int(i), *_) if i < len(self.lines):
                return self.lines[i]
        return self.header_line


def parse_statistics_csv(text: str) -> ParsedStatistics:
    """Split CSV ``text`` into records (empty cells as None), noting header problems."""
    numbered = [
        (n, line)
        for n, line in enumerate(text.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    illustrative = any(line.strip() == _ILLUSTRATIVE for line in text.splitlines())
    if not numbered:
        return ParsedStatistics([], [], 1, illustrative, [(("header",), "the file has no header")])
    reader = csv.DictReader(line for _, line in numbered)
    header = list(reader.fieldnames or [])
    problems: list[Located] = [
        (("header", name), f"unknown column {name!r}: the columns are {', '.join(COLUMNS)}")
        for name in header
        if name not in COLUMNS
    ]
    problems += [
        (("header", name), f"column {name!r} is missing: add it to the header")
        for name in COLUMNS
        if name not in header and name not in _OPTIONAL
    ]
    records: list[dict[str, str]] = []
    lines: list[int] = []
    for record in reader:
        lines.append(numbered[reader.line_num - 1][0])
        if None in record:  # more cells than columns
            problems.append((("rows", len(records)), "more cells than the header has columns"))
        # an empty cell is no value: the column's default, or "missing" if it has none
        records.append(
            {
                key: value.strip()
                for key, value in record.items()
                if key in COLUMNS and isinstance(value, str) and value.strip()
            }
        )
    return ParsedStatistics(records, lines, numbered[0][0], illustrative, problems)


def region_problems(regions: Sequence[str | None], known: dict[str, str]) -> list[Located]:
    """Rows (by index) whose well-formed region the plans do not cover (``known``: division
    code -> name); a malformed code is the row's own problem."""
    return [
        (
            ("rows", i, "region"),
            f"{region} is not a city or county of the plans: fix the GB/T 2260 code or add "
            "the region to its city plan",
        )
        for i, region in enumerate(regions)
        if region is not None and re.fullmatch(r"\d{6}", region) and region not in known
    ]


def check_statistics(
    parsed: ParsedStatistics, known_regions: dict[str, str] | None = None
) -> tuple[StatisticsTable | None, list[Finding]]:
    """The table of ``parsed`` records (None if anything is wrong) and every problem: the
    header's, each row's, those between rows (repeats, year-to-date order) and, given
    ``known_regions`` (division code -> name), rows for regions the plans lack.

    Rows are checked one by one so that a bad row hides no problem of the others; the checks
    between rows run on the good ones."""
    findings = [Finding(loc, message, "header") for loc, message in parsed.problems]
    good: list[tuple[int, StatisticsRow]] = []
    for i, record in enumerate(parsed.records):
        try:
            good.append((i, StatisticsRow.model_validate(record)))
        except ValidationError as exc:
            findings += [f._replace(location=("rows", i, *f.location)) for f in located_errors(exc)]
    index = [i for i, _ in good]
    table: StatisticsTable | None = None
    try:
        table = StatisticsTable(rows=tuple(r for _, r in good), illustrative=parsed.illustrative)
    except ValidationError as exc:
        findings += [_renumbered(f, index) for f in located_errors(exc)]
    if known_regions is not None:
        regions = [record.get("region") for record in parsed.records]
        findings += [
            Finding(loc, msg, "region") for loc, msg in region_problems(regions, known_regions)
        ]
    return (table if not findings else None), findings


def _renumbered(finding: Finding, index: list[int]) -> Finding:
    """``finding`` with its ``rows[k]`` (k-th good row) turned into the file's row number."""
    match finding.location:
        case ("rows", int(k), *rest):
            return finding._replace(location=("rows", index[k], *rest))
    return finding


def load_statistics(path: Path, known_regions: dict[str, str] | None = None) -> StatisticsTable:
    """The statistics in CSV ``path``, checked against ``known_regions`` when given; raises
    ``ConfigFileError`` naming every problem with its line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot read it: {exc.strerror}") from exc
    parsed = parse_statistics_csv(text)
    table, findings = check_statistics(parsed, known_regions)
    if table is None or findings:
        lines = [f"{path}: {len(findings)} problem(s) in the statistics"]
        for finding in sorted(findings, key=lambda f: parsed.line_of(f.location)):
            got = f" (got {finding.got})" if finding.got is not None else ""
            lines.append(
                f"  line {parsed.line_of(finding.location)}, "
                f"{format_location(finding.location)}: {finding.message}{got}"
            )
        raise ConfigFileError("\n".join(lines))
    return table


def dump_statistics_csv(table: StatisticsTable) -> str:
    """``table`` as CSV that ``parse_statistics_csv`` reads back to an equal table."""
    out = io.StringIO()
    if table.illustrative:
        out.write(_ILLUSTRATIVE + "\n")
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in table.rows:
        writer.writerow(
            {k: ("" if v is None else repr(v) if isinstance(v, float) else v) for k, v in row}
        )
    return out.getvalue()
