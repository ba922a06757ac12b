"""``energywatch plans validate``: check plan files before anything relies on them.

City plans (YAML, ``kind: city_plan``), enterprise registers (YAML with ``enterprises:``) and
statistics (CSV) are told apart by their content. Every problem is reported with its file, line
and field path (``targets.intensity.annual[2].year``) and what to do about it. Registers and
statistics are also checked against the city plans (``--cities``): a county or region the plans
do not know is a problem.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final, Literal

import typer
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from energywatch.config_files import ConfigFileError, parse_yaml
from plans.register import Finding, Location, Register, format_location, located_errors
from plans.register import region_problems as register_region_problems
from plans.statistics import check_statistics, parse_statistics_csv
from plans.targets import (
    CITY_PLANS_DIR,
    CityPlan,
    counties_by_city,
    known_regions,
    load_city_plans,
)

app = typer.Typer(no_args_is_help=True, help="Plan data: city plans, registers, statistics.")
# no wrapping: a problem stays on one line for grep and for logs
console = Console(stderr=True, soft_wrap=True)

Kind = Literal["city_plan", "register", "statistics"]
_SUFFIXES: Final = {".yaml", ".yml", ".csv"}
_README: Final = "plans/README.md"
# pydantic checks a model's consistency only once all its fields are valid
_LATER: Final = (
    "checks between fields (repeats, unknown counties, years outside the period) run once "
    "these problems are fixed"
)

#: What to do next, by pydantic error type (the message says what is wrong).
_HINTS: Final = {
    "missing": "add the field",
    "missing_cell": "fill in the cell",
    "inconsistent": "correct the values named",
    "region": "use a region of the city plans (their `counties`), or add it there",
    "extra_forbidden": f"remove the field or fix its spelling (fields: {_README})",
    "literal_error": "use one of the values listed",
    "enum": "use one of the values listed",
    "string_pattern_mismatch": "fix the value's format",
    "header": "fix the CSV header",
    "yaml": "fix the YAML syntax at this line",
    "kind": "add `kind: city_plan` to a city plan; registers have `enterprises:`",
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a file, where it is, and what to do about it."""

    file: str
    line: int | None
    path: str
    message: str
    hint: str


@dataclass
class Report:
    """The outcome of checking files: what each file was and every problem found."""

    checked: list[tuple[Path, str]] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _hint(kind: str) -> str:
    if kind in _HINTS:
        return _HINTS[kind]
    if kind.endswith(("_parsing", "_type")):
        return "give a value of the type named"
    if kind.startswith(("greater_than", "less_than", "too_")):
        return "fix the value: it is out of range"
    return "fix it as the message says"


def _yaml_line_finder(text: str) -> Callable[[Location], int | None]:
    """A function from a field's place to its line: the key's line, or its parent's when the
    field is missing."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lambda _location: None

    def line_of(location: Location) -> int | None:
        node, line = root, 1
        if node is None:
            return None
        for part in location:
            if isinstance(node, yaml.MappingNode):
                pair = next((kv for kv in node.value if str(kv[0].value) == str(part)), None)
                if pair is None:
                    break
                line, node = pair[0].start_mark.line + 1, pair[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
                if part >= len(node.value):
                    break
                node = node.value[part]
                line = node.start_mark.line + 1
            else:
                break
        return line

    return line_of


def _problem(path: Path, line: int | None, finding: Finding) -> Problem:
    got = f" (got {finding.got})" if finding.got is not None else ""
    return Problem(
        str(path),
        line,
        format_location(finding.location),
        finding.message + got,
        _hint(finding.kind),
    )


def _detect(data: Any) -> Kind | None:
    if not isinstance(data, dict):
        return None
    if data.get("kind") == "city_plan" or ("kind" not in data and "targets" in data):
        return "city_plan"
    if "kind" not in data and "enterprises" in data:
        return "register"
    return None


@dataclass(frozen=True)
class _Plans:
    """The city plans other files are checked against, or why they could not be loaded."""

    plans: dict[str, CityPlan] | None
    error: str | None


def _check_yaml(path: Path, text: str, plans: _Plans, named: bool, report: Report) -> None:
    line_of = _yaml_line_finder(text)
    try:
        data = parse_yaml(text, str(path))
    except ConfigFileError as exc:
        cause = exc.__cause__
        mark = getattr(cause, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        what = getattr(cause, "problem", None) or str(cause)
        report.problems.append(
            Problem(str(path), line, "", f"not valid YAML: {what}", _HINTS["yaml"])
        )
        return
    kind = _detect(data)
    if kind is None:
        if named:
            report.problems.append(
                Problem(str(path), 1, "kind", "cannot tell what this file is", _HINTS["kind"])
            )
        else:
            report.skipped.append(path)
        return
    model: type[CityPlan] | type[Register] = CityPlan if kind == "city_plan" else Register
    try:
        checked = model.model_validate(data)
    except ValidationError as exc:
        findings = located_errors(exc)
        report.problems += [_problem(path, line_of(f.location), f) for f in findings]
        if not any(f.kind == "inconsistent" for f in findings):
            report.notes.append(f"{path}: {_LATER}")
        return
    if isinstance(checked, CityPlan):
        report.checked.append((path, f"city plan {checked.city.id}, revision {checked.revision}"))
        return
    report.checked.append((path, f"register, {len(checked.enterprises)} enterprises"))
    if plans.plans is None:
        report.problems.append(_unchecked_regions(path, plans))
        return
    for location, message in register_region_problems(checked, counties_by_city(plans.plans)):
        finding = Finding(location, message, "region")
        report.problems.append(_problem(path, line_of(location), finding))


def _unchecked_regions(path: Path, plans: _Plans) -> Problem:
    return Problem(
        str(path),
        None,
        "",
        f"regions not checked: the city plans cannot be loaded ({plans.error})",
        "fix the city plans first (`energywatch plans validate` on their directory)",
    )


def _check_csv(path: Path, text: str, plans: _Plans, report: Report) -> None:
    parsed = parse_statistics_csv(text)
    regions = known_regions(plans.plans) if plans.plans is not None else None
    table, findings = check_statistics(parsed, regions)
    findings = [f._replace(kind="missing_cell") if f.kind == "missing" else f for f in findings]
    report.problems += [_problem(path, parsed.line_of(f.location), f) for f in findings]
    if table is None:
        return
    note = ", illustrative" if table.illustrative else ""
    report.checked.append((path, f"statistics, {len(table.rows)} rows{note}"))
    if plans.plans is None:
        report.problems.append(_unchecked_regions(path, plans))
    if path.name.startswith("example-") and not table.illustrative:
        report.problems.append(
            Problem(
                str(path),
                1,
                "",
                "an example-*.csv file must say it is illustrative",
                "add the line `# status: illustrative` at the top",
            )
        )


def _files(paths: Iterable[Path]) -> Iterable[tuple[Path, bool]]:
    """Each file to check, and whether it was named (not found in a named directory)."""
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in _SUFFIXES and p.is_file())
            yield from ((p, False) for p in found)
        else:
            yield path, True


def check_paths(paths: Iterable[Path], cities: Path = CITY_PLANS_DIR) -> Report:
    """Check every file in ``paths`` (directories are searched) and report all problems.

    Registers and statistics are checked against the city plans in ``cities``."""
    try:
        plans = _Plans(load_city_plans(cities), None)
    except ConfigFileError as exc:
        plans = _Plans(None, f"{cities}: {str(exc).splitlines()[0]}")
    report = Report()
    for path, named in _files(paths):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            report.problems.append(
                Problem(str(path), None, "", f"cannot read it: {reason}", "check the path")
            )
            continue
        if path.suffix == ".csv":
            _check_csv(path, text, plans, report)
        else:
            _check_yaml(path, text, plans, named, report)
    return report


def _print(report: Report) -> None:
    files = list(dict.fromkeys(p.file for p in report.problems))
    problems = sorted(report.problems, key=lambda p: (files.index(p.file), p.line or 0))
    for path, what in report.checked:
        if not any(p.file == str(path) for p in report.problems):
            console.print(f"[green]ok[/green] {escape(str(path))}: {escape(what)}")
    for problem in problems:
        where = problem.file + (f":{problem.line}" if problem.line is not None else "")
        field_path = f"  [bold]{escape(problem.path)}[/bold]" if problem.path else ""
        console.print(f"[red]{escape(where)}[/red]{field_path}", highlight=False)
        console.print(f"    {escape(problem.message)}", highlight=False)
        console.print(f"    [cyan]-> {escape(problem.hint)}[/cyan]", highlight=False)
    for note in report.notes:
        console.print(f"[yellow]note[/yellow] {escape(note)}", highlight=False)
    for path in report.skipped:
        console.print(f"[dim]skipped {escape(str(path))}: not a plan file[/dim]")


@app.command("validate")
def validate(
    paths: Annotated[
        list[Path], typer.Argument(help="City plan YAML, register YAML, statistics CSV, or dirs")
    ],
    cities: Annotated[
        Path, typer.Option(help="City plans that registers and statistics must agree with")
    ] = CITY_PLANS_DIR,
) -> None:
    """Check plan files and report every problem with its file, line and field.

    Exits 1 when there are problems, 0 when every file is good."""
    report = check_paths(paths, cities)
    _print(report)
    files = len({p.file for p in report.problems})
    if report.problems:
        console.print(
            f"[red]{len(report.problems)} problem(s) in {files} file(s)[/red]; fix them and run "
            "`energywatch plans validate` again"
        )
        raise typer.Exit(1)
    if not report.checked:
        console.print("[yellow]no plan files found[/yellow]: name YAML or CSV files")
        raise typer.Exit(1)
    console.print(f"[green]{len(report.checked)} file(s) valid[/green]")
