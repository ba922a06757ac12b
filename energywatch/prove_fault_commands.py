"""``energywatch prove faults | soak``: the fault-injection suite and the soak (issue 8, parts 1
and 2). Registered on the ``prove`` sub-app in ``prove_commands.py``.

Both run on a private stack (``proving_ground.private_stack``: its own home under
``.local/proving-ground`` and ports 10000 above the shared stack's), started and stopped by the
command, so restarting Kafka or stopping PostgreSQL never touches the stack other people use.
"""

import logging
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from proving_ground.faults import DEFAULT_SCENARIO, SCENARIOS, FaultConfig, FaultSuite, RunResult
from proving_ground.private_stack import DEFAULT_HOME, DEFAULT_PORT_OFFSET, PrivateStack
from proving_ground.soak import SoakConfig, SoakResult
from proving_ground.trend import SoakBounds

console = Console()
StackHome = Annotated[
    Path, typer.Option(help="The private stack's home (data, logs); not the shared .local/")
]
PortOffset = Annotated[
    int, typer.Option(help="The private stack's ports: the shared stack's + this (may be < 0)")
]


def faults(
    kills: Annotated[int, typer.Option(min=0, help="SIGKILLs of the worker in the kills run")] = 20,
    seed: Annotated[int, typer.Option(help="Seed of the kill points")] = 8,
    pg_outage_seconds: Annotated[
        float, typer.Option(min=0, help="How long PostgreSQL stays stopped in the outages run")
    ] = 60.0,
    run: Annotated[
        list[str] | None,
        typer.Option(help=f"Disturbed runs to do (default all): {', '.join(SCENARIOS)}"),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option(min=1, help="Records/s fed (default: the feed lasts as long as the kills)"),
    ] = None,
    records: Annotated[
        int | None, typer.Option(min=100, help="Replay only the scenario's first N records")
    ] = None,
    scenario: Annotated[Path, typer.Option(help="The scenario replayed")] = DEFAULT_SCENARIO,
    settle_timeout: Annotated[
        float, typer.Option(min=10, help="Longest wait for a run to settle, seconds")
    ] = 600.0,
    stack_home: StackHome = DEFAULT_HOME,
    port_offset: PortOffset = DEFAULT_PORT_OFFSET,
) -> None:
    """The fault-injection suite: a scenario's replay through worker, evaluator and notifier,
    undisturbed, then with the worker SIGKILLed at seeded random points, with Kafka restarted
    and PostgreSQL stopped mid-stream, and with a second worker joining and leaving. Every
    disturbed run must leave exactly what the undisturbed one left; exit 1 if one does not."""
    from benchmarks.results_file import write_results

    runs = tuple(run or SCENARIOS)
    unknown = sorted(set(runs) - set(SCENARIOS))
    if unknown:
        console.print(f"[red]no run named {', '.join(unknown)}[/red]; choose from {SCENARIOS}")
        raise typer.Exit(2)
    config = FaultConfig(
        scenario=scenario,
        runs=runs,
        kills=kills,
        seed=seed,
        pg_outage_seconds=pg_outage_seconds,
        rate=rate,
        records=records,
        settle_timeout_seconds=settle_timeout,
    )
    stack = PrivateStack.beside_shared(stack_home, port_offset)
    workdir = stack_home / "runs"
    started = time.monotonic()
    with _progress("fault-injection suite") as report, stack.running(report) as base:
        suite = FaultSuite(base, config, workdir, report, stack=stack, extra_env=stack.child_env())
        results = suite.run()
    document: dict[str, Any] = {
        "scenario": str(scenario),
        "config": {
            "kills": kills,
            "seed": seed,
            "pg_outage_seconds": pg_outage_seconds,
            "rate_records_per_second": suite.rate,
            "records": results[0].details.get("records"),
        },
        "passed": all(r.passed for r in results),
        "seconds": round(time.monotonic() - started, 1),
        "runs": {r.name: r.as_json() for r in results},
    }
    path = write_results("prove-faults", document)
    _print_faults(results, suite.rate)
    console.print(f"results: {path}")
    if not document["passed"]:
        console.print(f"[red]a disturbed run differs from the reference[/red]; logs in {workdir}")
        raise typer.Exit(1)


def soak(
    minutes: Annotated[float, typer.Option(min=0.5, help="How long the load is held")] = 10.0,
    rate: Annotated[
        float | None,
        typer.Option(min=1, help="Readings/s (default: 60% of the rate the worker sustains)"),
    ] = None,
    units: Annotated[int, typer.Option(min=1, help="Key units in the simulated fleet")] = 500,
    sample_seconds: Annotated[float, typer.Option(min=1, help="Seconds between samples")] = 5.0,
    calibration_records: Annotated[
        int, typer.Option(min=1000, help="Backlog the sustained rate is measured on")
    ] = 100_000,
    rss_growth_mib: Annotated[
        float, typer.Option(help="Most the worker's RSS may rise after the warm-up, MiB")
    ] = 64.0,
    lag_slope: Annotated[
        float, typer.Option(help="Most the lag may grow over the second half, records/s")
    ] = 1.0,
    stack_home: StackHome = DEFAULT_HOME,
    port_offset: PortOffset = DEFAULT_PORT_OFFSET,
) -> None:
    """Load and soak: readings at a steady rate through the worker and the evaluator for
    minutes, the worker's RSS and the consumer lag sampled all along; passes when memory stays
    bounded after the warm-up and lag does not grow. Exit 1 otherwise."""
    from benchmarks.results_file import write_results
    from proving_ground.soak import Soak

    seconds = minutes * 60
    bounds = SoakBounds(
        warmup_seconds=min(60.0, seconds / 4),
        rss_growth_mib=rss_growth_mib,
        lag_slope_records_per_second=lag_slope,
    )
    config = SoakConfig(
        minutes=minutes,
        rate=rate,
        units=units,
        sample_seconds=sample_seconds,
        calibration_records=calibration_records,
        bounds=bounds,
    )
    stack = PrivateStack.beside_shared(stack_home, port_offset)
    with _progress("soak") as report, stack.running(report) as base:
        result = Soak(base, config, stack_home / "soak", report, stack.child_env()).run()
    path = write_results("prove-soak", result.as_json())
    _print_soak(result)
    console.print(f"results: {path}")
    if not result.passed:
        raise typer.Exit(1)


# -- output ----------------------------------------------------------------------------------


@contextmanager
def _progress(title: str) -> Iterator[Any]:
    """A spinner whose line each step updates; SIGTERM ends the run as Ctrl-C does, so child
    processes, topics and the private stack are cleaned up."""
    logging.getLogger("kafka").setLevel(logging.CRITICAL)  # it logs every refused connection

    def terminate(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminate)
    columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task(title)

            def report(step: str) -> None:
                progress.update(task, description=f"{title}: {step}")

            yield report
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: services stopped, private stack stopped[/yellow]")
        sys.exit(130)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _print_faults(results: list[RunResult], rate: float) -> None:
    table = Table(title=f"fault-injection suite (feed {rate:,.1f} records/s)")
    for column in ("run", "result", "seconds", "figures", "first difference"):
        table.add_column(column, overflow="fold")
    for result in results:
        mark = "[green]pass[/green]" if result.passed else "[red]FAIL[/red]"
        if result.name == "reference":
            mark = "[green]settled[/green]" if result.settled else "[red]did not settle[/red]"
        table.add_row(
            result.name,
            mark,
            f"{result.seconds:.0f}",
            _figures(result),
            "" if result.passed else result.verdict(),
        )
    console.print(table)
    kills = next((r for r in results if r.name == "kills"), None)
    if kills is not None and kills.details.get("kill_points"):
        points = Table(title="kill points (seeded)")
        for column in (
            "kill",
            "s into replay",
            "delay after first store",
            "readings stored",
            "worker",
        ):
            points.add_column(column)
        for p in kills.details["kill_points"]:
            points.add_row(
                str(p["kill"]),
                f"{p['seconds_into_replay']:.1f}",
                f"{p['delay_after_first_store_seconds']:.3f}",
                str(p["readings_stored_at_kill"]),
                p["worker_was"],
            )
        console.print(points)


def _figures(result: RunResult) -> str:
    d = result.details
    words = [f"settled {d.get('settle_seconds')} s after the last fault/feed"]
    if result.name == "reference":
        snapshot = result.snapshot
        words = [
            f"{snapshot.rows('meter_readings'):,} readings, "
            f"{snapshot.rows('energy_rollups'):,} rollups, "
            f"{snapshot.rows('voc_hourly'):,} VOC hours, "
            f"{snapshot.rows('alert_history')} alert events, "
            f"{snapshot.rows('webhook.events')} told"
        ]
    if result.name == "kills":
        words.append(f"{d.get('kills')} kills (seed {d.get('seed')})")
    if result.name == "outages":
        kafka, pg = d.get("kafka_restart", {}), d.get("postgres_outage", {})
        words.append(
            f"Kafka down {kafka.get('down_seconds')} s, backlog {kafka.get('backlog_records')} "
            f"drained in {kafka.get('drain_seconds')} s; PostgreSQL down "
            f"{pg.get('stopped_seconds')} s, backlog {pg.get('backlog_records')} drained in "
            f"{pg.get('drain_seconds')} s"
        )
    if result.name == "rebalance":
        words.append(f"second worker in the group {d.get('second_worker_seconds')} s")
    if result.alerts_lost_or_doubled is not None:
        lost = result.alerts_lost_or_doubled
        words.append("alert events lost or doubled: " + ("[red]YES[/red]" if lost else "none"))
    restarts = d.get("services_restarted_after_exiting") or []
    if restarts:
        names = ", ".join(sorted({r["service"] for r in restarts}))
        words.append(f"{len(restarts)} restart(s) after exiting: {names}")
    letters = d.get("dead_letters") or {}
    if letters.get("repeats"):
        words.append(f"{letters['repeats']} dead letter(s) sent again")
    return "; ".join(words)


def _print_soak(result: SoakResult) -> None:
    table = Table(title="soak", show_header=False)
    calibration = result.calibration
    if calibration is not None:
        table.add_row(
            "worker's sustained rate (calibrated)",
            f"{calibration['sustained_per_second']:,.0f} readings/s "
            f"({calibration['records']:,} in {calibration['seconds']} s)",
        )
    table.add_row("load", f"{result.rate:,.0f} readings/s (achieved {result.achieved_rate:,.0f})")
    table.add_row("length", f"{result.config.minutes:g} min, {len(result.samples)} samples")
    memory, lag, bounds = result.memory, result.lag, result.config.bounds
    table.add_row(
        "worker RSS",
        f"{memory.at_warmup_end_mib} MiB after the {bounds.warmup_seconds:.0f} s warm-up, peak "
        f"{memory.peak_after_warmup_mib} MiB (+{memory.growth_mib}, bound "
        f"{bounds.rss_growth_mib:g}); slope {memory.slope_mib_per_minute} MiB/min (bound "
        f"{bounds.rss_slope_mib_per_minute:g}): "
        + ("[green]bounded[/green]" if memory.bounded else "[red]GROWS[/red]"),
    )
    table.add_row(
        "consumer lag",
        f"mean {lag.mean_records:,.0f}, max {lag.max_records:,.0f} records; slope "
        f"{lag.slope_records_per_second} records/s over the second half (bound "
        f"{bounds.lag_slope_records_per_second:g}): "
        + ("[red]GROWS[/red]" if lag.grows else "[green]steady[/green]"),
    )
    for problem in result.problems:
        table.add_row("[red]problem[/red]", problem)
    console.print(table)
