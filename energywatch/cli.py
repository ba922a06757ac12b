"""The ``energywatch`` command: one entry point for every process and tool.

Each command builds its settings once (``Settings.load()``) and its process through one
composition root; nothing connects at import time.
"""

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer
from prometheus_client import CollectorRegistry
from rich.console import Console

from energywatch import (
    alerts_commands,
    dashboards_commands,
    export_commands,
    hj212_commands,
    ingest_commands,
    plans_commands,
    prove_commands,
    register_commands,
    simulation_commands,
)
from energywatch.settings import REPO_ROOT, Settings

app = typer.Typer(
    help="EnergyWatch: online energy and VOC monitoring for key energy-using units.",
    no_args_is_help=True,
    rich_markup_mode="markdown",
    pretty_exceptions_show_locals=False,  # locals may hold secrets
)
topics_app = typer.Typer(help="Kafka topics.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
bench_app = typer.Typer(
    help="Benchmarks (not tests): JSON results in benchmarks/results/.", no_args_is_help=True
)
app.add_typer(bench_app, name="bench")

console = Console(stderr=True)


def _add_stack_commands() -> None:
    from stack.cli import app as stack_app

    app.add_typer(
        stack_app, name="stack", help="The local services: Kafka, TimescaleDB, Prometheus."
    )


_add_stack_commands()


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@topics_app.command("create")
def topics_create() -> None:
    """Create the readings, alerts and dead-letter topics if missing."""
    from energywatch.kafka_topics import ensure_topics, topic_layout

    settings = Settings.load()
    created = ensure_topics(settings)
    for name, partitions in topic_layout(settings).items():
        state = "created" if name in created else "exists"
        console.print(f"{name}: {partitions} partition(s), {state}")


@app.command()
def worker(
    loglevel: str = "info",
    streams: list[str] = typer.Option(  # noqa: B008
        [],
        "--stream",
        help="Only these streams (readings, voc, production; repeat the option). Default: all "
        "in one process. Split them so VOC samples and production reports never wait behind "
        "a readings backlog.",
    ),
) -> None:
    """Run the stream worker (Faust): store readings, VOC samples and production reports,
    dead-letter bad ones, mark the units they change for the alert evaluator."""
    import faust

    from energywatch.garbage_collection import tune_for_batches
    from energywatch.metrics_endpoint import serve_metrics
    from stream.app import STREAMS, app_id, create_app

    settings = Settings.load()
    chosen = tuple(streams) or STREAMS
    try:
        name = app_id(settings, chosen)
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    registry = CollectorRegistry()
    faust_app = create_app(settings, registry=registry, streams=chosen)
    port = serve_metrics(settings, name, settings.worker_metrics_port, registry, "worker")
    console.print(f"worker metrics on http://{settings.metrics_host}:{port}/metrics")
    tune_for_batches()
    faust.Worker(faust_app, loglevel=loglevel).execute_from_commandline()


@app.command("notify")
def notify(loglevel: str = "info") -> None:
    """Deliver alert events to the recipients in EW_RECIPIENTS_PATH over their channels
    (webhook, e-mail, DingTalk, WeCom), or, without that file, all of them to EW_WEBHOOK_URL."""
    from rich.markup import escape

    from alerts.metrics import NotifierMetrics
    from alerts.notifier import create_notifier
    from energywatch.metrics_endpoint import serve_metrics

    _logging(loglevel)
    settings = Settings.load()
    registry = CollectorRegistry()
    try:
        service = create_notifier(settings, NotifierMetrics.create(registry))
    except ValueError as exc:  # ConfigFileError is one
        console.print(f"[red]{escape(str(exc))}[/red]")
        raise typer.Exit(2) from exc
    port = serve_metrics(
        settings, settings.notifier_group_id, settings.notifier_metrics_port, registry, "notifier"
    )
    console.print(f"notifier metrics on http://{settings.metrics_host}:{port}/metrics")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, service.stop)
        await service.run()

    asyncio.run(main())


# the command's earlier name, still used by docker-compose.yml
app.command("notifier", hidden=True)(notify)
app.add_typer(register_commands.app, name="register")
app.add_typer(plans_commands.app, name="plans", help="Plan files: validate them.")
app.add_typer(hj212_commands.app, name="hj212", help="HJ 212 packets: decode them.")
app.add_typer(dashboards_commands.app, name="dashboards")
app.add_typer(ingest_commands.app, name="ingest", help="Ingest gateways: HJ 212, HTTPS, MQTT.")
app.add_typer(alerts_commands.app, name="alerts", help="Alert services: evaluator, notifier, API.")
app.add_typer(prove_commands.app, name="prove")
app.command()(simulation_commands.simulate)
app.command()(simulation_commands.replay)
app.command()(export_commands.export)


@app.command()
def run(
    scenario: Annotated[
        Path, typer.Option(help="The scenario to run (scenarios/*.yaml)")
    ] = REPO_ROOT / "scenarios" / "demo.yaml",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the pipeline")] = 600.0,
) -> None:
    """The main job: bring up the stack, run a simulated city through worker, alert evaluator
    and notifier, and report its alerts against what the scenario expected."""
    from energywatch.main_job import MainJob

    job = MainJob(scenario_path=scenario, timeout_seconds=timeout, console=console)
    raise typer.Exit(job.run())


@bench_app.command("simulate")
def bench_simulate(
    units: Annotated[int, typer.Option(min=1, help="Key units in the generated fleet")] = 500,
    days: Annotated[float, typer.Option(min=0.01, help="Days of 15-minute readings")] = 2.0,
    kafka: Annotated[bool, typer.Option(help="Also replay into the local Kafka")] = True,
) -> None:
    """Generation speed to a file (one core) and replay speed into Kafka."""
    import uuid

    from benchmarks.results_file import write_results
    from benchmarks.simulation import run as run_benchmark

    settings = None
    if kafka:
        run_id = uuid.uuid4().hex[:8]
        settings = Settings.load().model_copy(
            update={
                "readings_topic": f"ew-bench-{run_id}.readings",
                "production_topic": f"ew-bench-{run_id}.production",
                "voc_topic": f"ew-bench-{run_id}.voc",
                "alerts_topic": f"ew-bench-{run_id}.alerts",
                "dead_letter_topic": f"ew-bench-{run_id}.dead-letters",
            }
        )
    with console.status("benchmarking") as status:
        results = run_benchmark(units, days, settings, lambda m: status.update(m))
    path = write_results("simulate", results)
    for name, value in results.items():
        console.print(f"{name}: {value}")
    console.print(f"results: {path}")


@bench_app.command("ingest")
def bench_ingest(
    devices: Annotated[int, typer.Option(min=1, help="HJ 212 devices connected at once")] = 100,
    packets: Annotated[int, typer.Option(min=1, help="Minute packets per device")] = 200,
    readings: Annotated[int, typer.Option(min=1, help="Readings uploaded over HTTPS")] = 200_000,
    batch: Annotated[int, typer.Option(min=1, help="Readings per HTTPS request")] = 500,
    concurrency: Annotated[int, typer.Option(min=1, help="HTTPS requests in flight")] = 4,
) -> None:
    """Gateway throughput, each gateway its own process on one core: HJ 212 packets/s
    (answered after Kafka has them) and HTTPS readings/s in batches."""
    import uuid

    from benchmarks.ingest import bench_hj212, bench_http
    from benchmarks.results_file import write_results

    run_id = uuid.uuid4().hex[:8]
    with console.status("benchmarking") as status:
        results = {
            "hj212": bench_hj212(devices, packets, run_id, lambda m: status.update(m)),
            "http": bench_http(readings, batch, concurrency, run_id, lambda m: status.update(m)),
        }
    path = write_results("ingest", results)
    for name, value in results.items():
        console.print(f"{name}: {value}")
    console.print(f"results: {path}")


@bench_app.command("stream")
def bench_stream(
    readings: Annotated[
        int, typer.Option(min=1000, help="Readings pre-loaded into Kafka")
    ] = 300_000,
    units: Annotated[int, typer.Option(min=1, help="Key units in the simulated fleet")] = 500,
    latency_rate: Annotated[
        float, typer.Option(min=1, help="Readings/s produced while measuring latency")
    ] = 2000.0,
    latency_seconds: Annotated[float, typer.Option(min=1, help="How long to measure it")] = 20.0,
) -> None:
    """End-to-end worker throughput (Kafka -> ledger + rollups), latency percentiles, worker
    memory, the raw COPY and raw consume ceilings and the ratios, and a profile."""
    from benchmarks.results_file import write_results
    from benchmarks.stream import run as run_benchmark

    with console.status("benchmarking") as status:
        results = run_benchmark(
            Settings.load(), readings, units, latency_rate, latency_seconds, status.update
        )
    path = write_results("stream", results)
    for name, value in results.items():
        if name != "profile":
            console.print(f"{name}: {value}")
    console.print("profile, self time:", results["profile"]["top_self_time"][:8])
    console.print(f"results: {path}")


@bench_app.command("side-by-side")
def bench_side_by_side(
    readings: Annotated[
        int, typer.Option(min=1000, help="Readings pre-loaded into Kafka, once")
    ] = 200_000,
    units: Annotated[int, typer.Option(min=1, help="Key units in the simulated fleet")] = 500,
) -> None:
    """The same job (readings -> per-unit 15-minute and daily tce rollups) by EnergyWatch, a
    Quix Streams app and a plain kafka-python consumer, one after the other, with the raw
    consume, raw COPY and bare-Faust ceilings: readings/s, seconds, peak memory, ratios.
    Fails unless every peer's rollups equal EnergyWatch's. JSON in benchmarks/results/, the
    table in benchmarks/SIDE_BY_SIDE.md."""
    import json

    import psycopg
    from kafka.errors import KafkaError

    from benchmarks.results_file import write_results
    from benchmarks.side_by_side import RollupMismatch, markdown
    from benchmarks.side_by_side import run as run_benchmark

    try:
        with console.status("benchmarking") as status:
            results = run_benchmark(Settings.load(), readings, units, status.update)
    except RollupMismatch as exc:
        console.print(f"[red]the contenders did not do the same job:[/red] {exc}")
        raise typer.Exit(2) from exc
    except (RuntimeError, OSError, psycopg.Error, KafkaError) as exc:
        console.print(f"[red]the benchmark failed:[/red] {exc}")
        console.print("is the local stack up? `energywatch stack status`")
        raise typer.Exit(1) from exc
    path = write_results("side-by-side", results)
    table = markdown(json.loads(path.read_text()))
    (REPO_ROOT / "benchmarks" / "SIDE_BY_SIDE.md").write_text(table)
    console.print(table)
    console.print(f"results: {path}; table: benchmarks/SIDE_BY_SIDE.md")


@bench_app.command("dashboards")
def bench_dashboards(
    units: Annotated[int, typer.Option(min=1, help="Key units in the simulated fleet")] = 500,
    days: Annotated[int, typer.Option(min=1, help="Days of data, ending now")] = 365,
    voc_minute_days: Annotated[
        int, typer.Option(min=0, help="Days of VOC minute samples (hours: every day)")
    ] = 7,
    quarter_hour_days: Annotated[
        int | None,
        typer.Option(min=1, help="Days of 15-minute rollups (default: all, as the worker keeps)"),
    ] = None,
    refill: Annotated[bool, typer.Option(help="Generate the data again")] = False,
    database: Annotated[str, typer.Option(help="The benchmark's own database")] = (
        "energywatch_bench_dashboards"
    ),
    repeats: Annotated[int, typer.Option(min=1, help="Timed runs per query")] = 5,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds before a query is cut")] = 30.0,
    fill_only: Annotated[bool, typer.Option(help="Prepare the data, time nothing")] = False,
) -> None:
    """Every dashboard panel's SQL over a year of data for the fleet (kept in its own
    database for the next run): median and p95 ms per panel and range, rows, > 100 ms."""
    from datetime import UTC, datetime

    import psycopg
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from benchmarks.dashboards import DatasetMismatch, results_table
    from benchmarks.dashboards import run as run_benchmark
    from benchmarks.results_file import write_results
    from benchmarks.year_of_data import DatasetSpec

    now = datetime.now(UTC)
    end = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
    spec = DatasetSpec(
        units=units,
        days=days,
        end=end,
        voc_minute_days=voc_minute_days,
        quarter_hour_days=quarter_hour_days,
    )
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("dashboards benchmark", total=1.0)

        def step(what: str, share: float) -> None:
            progress.update(task, description=what, completed=share)

        try:
            results = run_benchmark(
                Settings.load().database_url.get_secret_value(),
                spec,
                refill=refill,
                database=database,
                repeats=repeats,
                timeout_seconds=timeout,
                fill_only=fill_only,
                step=step,
            )
        except DatasetMismatch as exc:
            console.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from exc
        except psycopg.OperationalError as exc:
            console.print(f"[red]{exc}[/red]\nis the stack up? (energywatch stack status)")
            raise typer.Exit(1) from exc
    path = write_results("dashboards", results)
    dataset = results["dataset"]
    console.print(f"dataset: {dataset['rows']}")
    console.print(f"sizes (MB): {dataset['sizes_mb']}")
    console.print(f"generation: {dataset['generation_seconds']} s, reused: {dataset['reused']}")
    if "skipped" in results:
        console.print(f"[yellow]{results['skipped']}[/yellow]")
    elif "measurements" in results:
        console.print(results_table(results))
        console.print(f"summary: {results['summary']}")
    console.print(f"results: {path}")


@bench_app.command("alerts")
def bench_alerts(
    seconds: Annotated[float, typer.Option(min=1, help="How long to send probes")] = 60.0,
    background_rate: Annotated[
        float, typer.Option(min=1, help="Meter readings/s produced all along")
    ] = 10_000.0,
    probe_rate: Annotated[
        float, typer.Option(min=0.1, max=20, help="Probe readings/s, each must be notified")
    ] = 2.0,
    units: Annotated[int, typer.Option(min=1, help="Key units in the background fleet")] = 500,
) -> None:
    """Alert latency: a VOC reading above its single-reading limit entering Kafka -> its
    webhook notification arriving, through worker, evaluator and notifier, under background
    load; p50/p90/p99/max, stages, lost probes. Own database and topics, recreated."""
    import psycopg
    from kafka.errors import KafkaError

    from benchmarks.alerts import AlertBenchConfig, results_table
    from benchmarks.alerts import run as run_benchmark
    from benchmarks.results_file import write_results
    from energywatch.settings import default_env_file

    config = AlertBenchConfig(
        seconds=seconds, background_rate=background_rate, probe_rate=probe_rate, units=units
    )
    workdir = default_env_file().parent / "bench-alerts"
    try:
        with console.status("benchmarking") as status:
            results = run_benchmark(Settings.load(), config, workdir, status.update)
    except (RuntimeError, OSError, psycopg.Error, KafkaError) as exc:
        console.print(f"[red]the benchmark failed:[/red] {exc}")
        console.print("is the local stack up? `energywatch stack status`; logs in " + str(workdir))
        raise typer.Exit(1) from exc
    path = write_results("alerts", results)
    console.print(results_table(results))
    console.print(f"results: {path}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
