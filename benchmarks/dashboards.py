"""How long every dashboard panel's SQL takes over a year of data for the 500-unit fleet
(issue 7: each under 100 ms). A benchmark, not a test: ``energywatch bench dashboards``.

1. **Dataset.** A database of its own (``energywatch_bench_dashboards``), migrated like any
   other and filled by ``benchmarks.year_of_data_fill`` with a year of every table the
   dashboards read, at the row counts the real pipeline produces for the fleet (see
   ``benchmarks/year_of_data.py``), then the reference tables, the edition's compression
   policies and ANALYZE. Kept for the next run unless ``--refill``; generation time, rows and
   sizes are reported.
2. **Timer.** Each TimescaleDB target of ``dashboards.queries.panel_queries()`` is expanded
   as Grafana would (``dashboards.grafana_macros.expand_sql``) for the last 24 h, 7 days,
   30 days and the whole dataset, ending where the data ends, with ``default_variables()``,
   one county selected and one unit selected; run once to warm up, then ``repeats`` times:
   median and p95 wall time (query and fetch, as Grafana's backend sees it), rows returned,
   and ``EXPLAIN ANALYZE`` of anything over the 100 ms target. PromQL targets are out of
   scope (Prometheus holds no year of data here) and only counted.
"""

import re
import shutil
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Protocol

import psycopg
from psycopg.rows import TupleRow

from benchmarks.year_of_data import DatasetSpec, chunks, expected_rows, plan_dataset
from benchmarks.year_of_data_fill import (
    FILL_NOTES,
    build_indexes,
    create_plan_tables,
    defer_indexes,
    fill_chunk,
    write_alerts,
    write_progress,
)
from storage.scratch_databases import recreate_database

DATABASE: Final = "energywatch_bench_dashboards"
TARGET_MS: Final = 100.0
#: Grafana's default maxDataPoints is the panel's width in pixels: about this many
MAX_DATA_POINTS: Final = 1000
RANGES: Final = {"24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
#: bytes on disk per row, indexes included, measured on a filled benchmark database; for the
#: disk check before a fill
_BYTES_PER_ROW: Final = {
    "meter_readings": 275,
    "energy_rollups": 372,  # fillfactor 70 and a five-column text primary key
    "voc_samples": 266,
    "voc_hourly": 234,
    "voc_daily": 240,
}
# Grafana's rangeutil.roundInterval: (upper bound in ms, interval)
_ROUND_INTERVAL: Final = (
    (15, timedelta(milliseconds=10)),
    (35, timedelta(milliseconds=20)),
    (75, timedelta(milliseconds=50)),
    (150, timedelta(milliseconds=100)),
    (350, timedelta(milliseconds=200)),
    (750, timedelta(milliseconds=500)),
    (1_500, timedelta(seconds=1)),
    (3_500, timedelta(seconds=2)),
    (7_500, timedelta(seconds=5)),
    (12_500, timedelta(seconds=10)),
    (17_500, timedelta(seconds=15)),
    (25_000, timedelta(seconds=20)),
    (45_000, timedelta(seconds=30)),
    (90_000, timedelta(minutes=1)),
    (210_000, timedelta(minutes=2)),
    (450_000, timedelta(minutes=5)),
    (750_000, timedelta(minutes=10)),
    (1_050_000, timedelta(minutes=15)),
    (1_500_000, timedelta(minutes=20)),
    (2_700_000, timedelta(minutes=30)),
    (5_400_000, timedelta(hours=1)),
    (9_000_000, timedelta(hours=2)),
    (16_200_000, timedelta(hours=3)),
    (32_400_000, timedelta(hours=6)),
    (86_400_000, timedelta(hours=12)),
    (604_800_000, timedelta(days=1)),
    (1_814_400_000, timedelta(weeks=1)),
    (3_628_800_000, timedelta(days=30)),
)
Step = Callable[[str, float], None]  # what is happening, share done (0..1)
Variables = dict[str, str | list[str]]


class DatasetMismatch(RuntimeError):
    """The kept database holds another size of dataset than asked for."""


class SqlTarget(Protocol):
    """What the timer needs of ``dashboards.queries.PanelQuery``."""

    @property
    def dashboard_uid(self) -> str: ...
    @property
    def panel_title(self) -> str: ...
    @property
    def ref_id(self) -> str: ...
    @property
    def datasource(self) -> str: ...
    @property
    def expr(self) -> str: ...


def grafana_interval(span: timedelta, max_points: int = MAX_DATA_POINTS) -> timedelta:
    """``$__interval`` for a time range: span / maxDataPoints rounded as Grafana rounds it."""
    raw_ms = span.total_seconds() * 1000 / max_points
    for bound, interval in _ROUND_INTERVAL:
        if raw_ms < bound:
            return interval
    return timedelta(days=365)


# -- the dataset ----------------------------------------------------------------------------


@dataclass
class Dataset:
    url: str
    spec: DatasetSpec
    reused: bool
    rows: dict[str, int] = field(default_factory=dict)
    sizes_mb: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    step_seconds: dict[str, float] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        spec = asdict(self.spec)
        spec["end"] = self.spec.end.isoformat()
        spec["start"] = self.spec.start.isoformat()
        return {
            "database": psycopg.conninfo.conninfo_to_dict(self.url).get("dbname"),
            "spec": spec,
            "reused": self.reused,
            "generation_seconds": round(self.seconds, 1),
            "step_seconds": {k: round(v, 1) for k, v in self.step_seconds.items()},
            "rows": self.rows,
            "sizes_mb": self.sizes_mb,
            **self.notes,
        }


def _kept(url: str) -> tuple[DatasetSpec, dict[str, Any]] | None:
    """The spec and record of a completely filled dataset at ``url``, if there is one."""
    try:
        with psycopg.connect(url) as conn:
            row = conn.execute(
                "SELECT units, days, end_at, voc_minute_days, quarter_hour_days, seed, seconds, "
                "rows, sizes "
                "FROM bench.dataset WHERE finished_at IS NOT NULL"
            ).fetchone()
    except (psycopg.OperationalError, psycopg.errors.UndefinedTable):
        return None
    if row is None:
        return None
    spec = DatasetSpec(
        units=row[0],
        days=row[1],
        end=row[2],
        voc_minute_days=row[3],
        quarter_hour_days=row[4],
        seed=row[5],
    )
    return spec, {"seconds": row[6], "rows": row[7], "sizes": row[8]}


def prepare_dataset(
    admin_url: str, spec: DatasetSpec, *, refill: bool, database: str, step: Step
) -> Dataset:
    """The benchmark database with ``spec``'s data: kept from an earlier run when it holds the
    same fleet and span (its own end time), else (or with ``refill``) generated now."""
    url = psycopg.conninfo.make_conninfo(admin_url, dbname=database)
    kept = None if refill else _kept(url)
    if kept is not None:
        old, record = kept
        same = (old.units, old.days, old.voc_minute_days, old.quarter_hour_days, old.seed) == (
            spec.units,
            spec.days,
            spec.voc_minute_days,
            spec.quarter_hour_days,
            spec.seed,
        )
        if not same:
            raise DatasetMismatch(
                f"database {database} holds {old.units} units x {old.days} days "
                f"(VOC minutes {old.voc_minute_days} days, 15-minute rollups "
                f"{old.quarter_hour_days or old.days} days, seed {old.seed}); pass --refill to "
                "generate the size asked for, or ask for that size"
            )
        notes: dict[str, Any] = {}
        upgraded = _upgrade(url)
        if upgraded:
            notes["migrations_applied_to_kept_data"] = upgraded
        return Dataset(
            url, old, True, record["rows"], record["sizes"], record["seconds"] or 0.0, {}, notes
        )
    return _fill(admin_url, database, spec, step)


def _upgrade(url: str) -> list[int]:
    """Bring a kept dataset's schema up to date (the panels may read what a newer migration
    adds; a migration that adds a derived table fills it from what is stored), then ANALYZE
    what changed. The versions applied."""
    import asyncio

    from storage.migrate import migrate

    async def migrated() -> list[int]:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            return await migrate(conn)

    applied = asyncio.run(migrated())
    if applied:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ANALYZE")
    return applied


def _check_disk(admin_url: str, expected: Mapping[str, int]) -> dict[str, Any]:
    need = sum(_BYTES_PER_ROW.get(t, 200) * n for t, n in expected.items())
    where: str | None = None
    try:
        with psycopg.connect(admin_url) as conn:
            row = conn.execute("SELECT current_setting('data_directory')").fetchone()
            where = str(row[0]) if row else None
    except psycopg.Error:
        where = None  # only superusers and pg_read_all_settings may read it
    if where is None or not Path(where).exists():
        local = Path(__file__).resolve().parents[1] / ".local"
        where = str(local) if local.exists() else None
    if where is None:
        return {"estimated_gb": round(need / 1e9, 1), "free_gb": None}
    free = shutil.disk_usage(where).free
    if need > free * 0.9:
        raise RuntimeError(
            f"the dataset needs about {need / 1e9:.0f} GB and {where} has {free / 1e9:.0f} GB "
            "free: free space, or keep 15-minute rollups for fewer days (--quarter-hour-days "
            "30: they are most of it), or ask for fewer --days, --units or --voc-minute-days"
        )
    return {"estimated_gb": round(need / 1e9, 1), "free_gb": round(free / 1e9, 1)}


def _fill(admin_url: str, database: str, spec: DatasetSpec, step: Step) -> Dataset:
    import asyncio

    from storage.migrate import migrate

    plan = plan_dataset(spec)
    expected = expected_rows(plan)
    notes: dict[str, Any] = {"expected_rows": expected, "disk": _check_disk(admin_url, expected)}
    notes["generator"] = FILL_NOTES
    notes["voc_monitors"] = len(plan.monitors)
    notes["meters"] = len(plan.meters)
    url = recreate_database(admin_url, database)

    async def migrated() -> None:
        async with await psycopg.AsyncConnection.connect(url) as conn:
            await migrate(conn)

    asyncio.run(migrated())
    started = time.perf_counter()
    seconds: dict[str, float] = {}
    months = chunks(spec)
    with psycopg.connect(url) as conn:
        create_plan_tables(conn, plan)
        deferred = defer_indexes(conn)
        for index, chunk in enumerate(months):
            month = chunk.cst_month.strftime("%Y-%m")

            def report(label: str, index: int = index, month: str = month) -> None:
                step(f"{month}: {label}", index / len(months))

            for label, took in fill_chunk(conn, plan, chunk, report).items():
                seconds[label] = seconds.get(label, 0.0) + took
        indexes_started = time.perf_counter()
        build_indexes(conn, deferred, lambda what: step(f"index {what}", 1.0))
        seconds["indexes"] = time.perf_counter() - indexes_started
        step("alerts and stream progress", 1.0)
        notes["alert_events"] = write_alerts(conn, plan)
        readings = conn.execute("SELECT count(*) FROM meter_readings").fetchone()
        write_progress(conn, plan, int(readings[0]) if readings else 0)
    step("reference data", 1.0)
    notes["reference_data"] = _reference_data(url, plan)
    step("compression policies", 1.0)
    notes["policies"] = _policies(url, spec)
    step("ANALYZE", 1.0)
    analyze_started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("ANALYZE")
    seconds["analyze"] = time.perf_counter() - analyze_started
    total = time.perf_counter() - started
    rows, sizes = table_stats(url)
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE bench.dataset SET finished_at = now(), seconds = %s, rows = %s, sizes = %s",
            (total, psycopg.types.json.Jsonb(rows), psycopg.types.json.Jsonb(sizes)),
        )
    return Dataset(url, spec, False, rows, sizes, total, seconds, notes)


def _reference_data(url: str, plan: Any) -> dict[str, Any]:
    """The ``ref_*`` tables from the fleet's register and the seed plans, once
    ``storage/reference_data.py`` and its migration exist."""
    import asyncio

    try:
        from plans.targets import load_city_plans
        from storage.reference_data import sync_reference_data
    except ImportError as exc:
        return {"skipped": f"storage/reference_data.py is not there yet ({exc})"}
    try:
        counts = asyncio.run(
            sync_reference_data(url, plan.register, load_city_plans(), now=datetime.now(UTC))
        )
    except psycopg.errors.UndefinedTable as exc:
        return {"skipped": f"the reference tables' migration is not there yet ({exc})"}
    return {"rows": counts}


def _policies(url: str, spec: DatasetSpec) -> list[str]:
    """The project's compression and retention policies for this edition; where they apply,
    chunks already past ``compress_after`` are compressed now, as the policy's job would have
    done over the year."""
    import asyncio

    from storage.policies import COMPRESSED, PolicyConfig, apply_policies, describe

    async def apply() -> list[str]:
        config = PolicyConfig()
        async with await psycopg.AsyncConnection.connect(url) as conn:
            report = await apply_policies(conn, config)
            if report.edition.has_tsl_features:
                await conn.set_autocommit(True)
                for table in COMPRESSED:
                    await conn.execute(
                        "SELECT compress_chunk(c, if_not_compressed => true) "
                        "FROM show_chunks(%s::regclass, older_than => %s::timestamptz) c",
                        (table.table, spec.end - config.compress_after),
                    )
        return describe(report.policies)

    return asyncio.run(apply())


_STATS = """
SELECT h.hypertable_name, hypertable_size(format('%I', h.hypertable_name)::regclass)
FROM timescaledb_information.hypertables h
UNION ALL
SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind = 'r'
  AND c.relname NOT IN (SELECT hypertable_name FROM timescaledb_information.hypertables)
"""


def table_stats(url: str) -> tuple[dict[str, int], dict[str, float]]:
    """Rows and on-disk size (MB, indexes included) of every table in ``public``."""
    rows: dict[str, int] = {}
    sizes: dict[str, float] = {}
    with psycopg.connect(url) as conn:
        for name, size in conn.execute(_STATS).fetchall():
            sizes[name] = round(int(size or 0) / 1e6, 1)
            count = conn.execute(f'SELECT count(*) FROM "{name}"').fetchone()  # noqa: S608 - a catalogue name
            rows[name] = int(count[0]) if count else 0
    return rows, sizes


# -- the timer ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Measurement:
    dashboard_uid: str
    panel_title: str
    ref_id: str
    range: str
    variant: str
    interval: str
    runs_ms: tuple[float, ...] = ()
    rows: int | None = None
    error: str | None = None
    same_as: str | None = None  # the variant whose SQL this one expanded to, identically
    explain: tuple[str, ...] = ()

    @property
    def median_ms(self) -> float | None:
        return round(statistics.median(self.runs_ms), 2) if self.runs_ms else None

    @property
    def p95_ms(self) -> float | None:
        if not self.runs_ms:
            return None
        ordered = sorted(self.runs_ms)
        return round(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], 2)

    @property
    def over_target(self) -> bool:
        return self.error is not None or (self.median_ms or 0) > TARGET_MS

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(median_ms=self.median_ms, p95_ms=self.p95_ms, over_target=self.over_target)
        out["runs_ms"] = [round(r, 2) for r in self.runs_ms]
        return {k: v for k, v in out.items() if v not in (None, (), [])}


def variable_variants(
    defaults: Mapping[str, list[str] | str], unit: str, county: str, city: str
) -> dict[str, Variables]:
    """The selections timed: the dashboards' defaults, one county (and its city) selected,
    one unit (and its county and city) selected. A variable is recognised by its name."""

    def pick(name_pattern: str, value: str, base: Variables) -> bool:
        found = False
        for name, current in defaults.items():
            if re.search(name_pattern, name, re.IGNORECASE):
                base[name] = [value] if isinstance(current, list) else value
                found = True
        return found

    variants: dict[str, Variables] = {"defaults": dict(defaults)}
    county_only: Variables = dict(defaults)
    if pick(r"county", county, county_only):
        pick(r"city", city, county_only)
        variants["one county"] = county_only
    one_unit: Variables = dict(defaults)
    if pick(r"unit|enterprise", unit, one_unit):
        pick(r"county", county, one_unit)
        pick(r"city", city, one_unit)
        variants["one unit"] = one_unit
    return variants


def selection(url: str) -> tuple[str, str, str]:
    """A representative unit (the largest by planned tce with the most meters), its county
    and its city."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT u.code, u.county, u.city FROM bench.units u "
            "JOIN bench.meters m ON m.code = u.code GROUP BY u.code, u.county, u.city, "
            "u.annual_tce ORDER BY count(*) DESC, u.annual_tce DESC LIMIT 1"
        ).fetchone()
    if row is None:
        raise RuntimeError("the benchmark database has no units: run with --refill")
    return str(row[0]), str(row[1]), str(row[2])


def _run(conn: psycopg.Connection[TupleRow], sql: str) -> tuple[float, int]:
    started = time.perf_counter()
    cur = conn.execute(sql.encode())
    rows = len(cur.fetchall()) if cur.description is not None else 0
    return (time.perf_counter() - started) * 1000, rows


def time_queries(
    url: str,
    dataset: DatasetSpec,
    targets: Sequence[SqlTarget],
    variants: Mapping[str, Variables],
    *,
    repeats: int,
    timeout_seconds: float,
    step: Step,
    ranges: Mapping[str, timedelta] | None = None,
) -> list[Measurement]:
    """Each target over each range and variable selection: a warm-up, then ``repeats`` runs."""
    from dashboards.grafana_macros import expand_sql, format_interval

    spans = dict(ranges or RANGES)
    spans = {k: v for k, v in spans.items() if v < timedelta(days=dataset.days)}
    spans["whole dataset"] = timedelta(days=dataset.days)
    out: list[Measurement] = []
    total = max(1, len(targets) * len(spans) * len(variants))
    done = 0
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"SET statement_timeout = {int(timeout_seconds * 1000)}")
        for target in targets:
            for range_name, span in spans.items():
                interval = grafana_interval(span)
                seen: dict[str, str] = {}
                for variant, values in variants.items():
                    done += 1
                    step(f"{target.panel_title} [{range_name}, {variant}]", done / total)
                    base = Measurement(
                        dashboard_uid=target.dashboard_uid,
                        panel_title=target.panel_title,
                        ref_id=target.ref_id,
                        range=range_name,
                        variant=variant,
                        interval=format_interval(interval),
                    )
                    try:
                        sql = expand_sql(
                            target.expr,
                            time_from=dataset.end - span,
                            time_to=dataset.end,
                            interval=interval,
                            variables=values,
                        )
                    except ValueError as exc:
                        out.append(replace(base, error=f"expand_sql: {exc}"))
                        continue
                    if sql in seen:
                        out.append(replace(base, same_as=seen[sql]))
                        continue
                    seen[sql] = variant
                    out.append(_measure(conn, sql, base, repeats))
    return out


def _measure(
    conn: psycopg.Connection[TupleRow], sql: str, base: Measurement, repeats: int
) -> Measurement:
    try:
        _run(conn, sql)  # warm-up: plan and cache
        runs = []
        rows = 0
        for _ in range(repeats):
            took, rows = _run(conn, sql)
            runs.append(took)
    except psycopg.Error as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return replace(base, error=message)
    explain: tuple[str, ...] = ()
    if statistics.median(runs) > TARGET_MS:
        try:
            plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}".encode()).fetchall()
            explain = tuple(str(line[0]) for line in plan[:40])
        except psycopg.Error as exc:
            explain = (f"EXPLAIN failed: {exc}",)
    return replace(base, runs_ms=tuple(runs), rows=rows, explain=explain)


# -- the command ------------------------------------------------------------------------------


def sql_targets() -> tuple[list[SqlTarget], int, str | None]:
    """The dashboards' TimescaleDB targets, how many PromQL ones there are, and why there is
    nothing to time (the dashboards not built yet) or None."""
    from dashboards import queries

    try:
        every = list(queries.panel_queries())
    except NotImplementedError as exc:
        return [], 0, f"dashboards.queries.panel_queries() is still a stub: {exc}"
    sql: list[SqlTarget] = [q for q in every if q.datasource == "timescaledb"]
    variable_queries = getattr(queries, "variable_queries", None)
    if callable(variable_queries):
        sql += [q for q in variable_queries() if q.datasource == "timescaledb"]
    return sql, len(every) - len([q for q in every if q.datasource == "timescaledb"]), None


def run(
    admin_url: str,
    spec: DatasetSpec,
    *,
    refill: bool,
    database: str,
    repeats: int,
    timeout_seconds: float,
    fill_only: bool,
    step: Step,
) -> dict[str, Any]:
    """Prepare the dataset and time every SQL target; the results document."""
    dataset = prepare_dataset(admin_url, spec, refill=refill, database=database, step=step)
    results: dict[str, Any] = {"dataset": dataset.describe(), "target_ms": TARGET_MS}
    age = datetime.now(UTC) - dataset.spec.end
    if age > timedelta(days=1):
        results["dataset"]["warning"] = (
            f"the data ends {age.days} days before now: ranges end where the data ends, but "
            "a panel that reads now() rather than the time range sees less; --refill"
        )
    if fill_only:
        return results
    targets, promql, why_not = sql_targets()
    results["promql"] = {
        "targets": promql,
        "note": "out of scope: Prometheus holds no year of data here; not timed",
    }
    if why_not is not None:
        results["skipped"] = why_not
        return results
    from dashboards.queries import default_variables

    unit, county, city = selection(dataset.url)
    variants = variable_variants(default_variables(), unit, county, city)
    measurements = time_queries(
        dataset.url,
        dataset.spec,
        targets,
        variants,
        repeats=repeats,
        timeout_seconds=timeout_seconds,
        step=step,
    )
    timed = [m for m in measurements if m.runs_ms]
    results["timer"] = {
        "repeats": repeats,
        "warm_up_runs": 1,
        "statement_timeout_seconds": timeout_seconds,
        "max_data_points": MAX_DATA_POINTS,
        "ranges_end_at": dataset.spec.end.isoformat(),
        "selection": {"unit": unit, "county": county, "city": city},
        "variants": variants,
    }
    results["measurements"] = [m.to_json() for m in measurements]
    over = [m for m in measurements if m.over_target]
    results["summary"] = {
        "sql_targets": len(targets),
        "measured": len(timed),
        "over_target": len(over),
        "errors": sum(1 for m in measurements if m.error),
        "slowest_median_ms": max((m.median_ms or 0 for m in timed), default=None),
    }
    results["over_target"] = [
        f"{m.dashboard_uid} / {m.panel_title} / {m.ref_id} [{m.range}, {m.variant}]: "
        + (m.error or f"{m.median_ms} ms")
        for m in over
    ]
    return results


def results_table(results: Mapping[str, Any]) -> Any:
    """A rich table: one row per target and range, median (p95) per variable selection,
    red above the target."""
    from rich.table import Table

    variants = list(results.get("timer", {}).get("variants", {}))
    table = Table(title=f"panel queries (median / p95 ms; target < {TARGET_MS:.0f} ms)")
    for column in ("dashboard", "panel", "ref", "range", *variants, "rows"):
        table.add_column(column, justify="right" if column in (*variants, "rows") else "left")
    rows: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for m in results.get("measurements", []):
        key = (m["dashboard_uid"], m["panel_title"], m["ref_id"], m["range"])
        rows.setdefault(key, {})[m["variant"]] = m
    for key, by_variant in rows.items():
        cells = []
        for variant in variants:
            m = by_variant.get(variant, {})
            if "error" in m:
                cells.append(f"[red]{m['error'][:40]}[/red]")
            elif "same_as" in m:
                cells.append(f"= {m['same_as']}")
            else:
                text = f"{m.get('median_ms')} / {m.get('p95_ms')}"
                cells.append(f"[red]{text}[/red]" if m.get("over_target") else text)
        measured = by_variant.get("defaults", {})
        table.add_row(*key, *cells, str(measured.get("rows", "")))
    return table
