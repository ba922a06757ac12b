"""``energywatch simulate`` and ``energywatch replay``: simulated data into Kafka or a file."""

import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from energywatch.config_files import ConfigFileError
from energywatch.settings import Settings
from simulators.pacing import Speed, paced
from simulators.records import Channel, SimRecord

console = Console(stderr=True)
DEFAULT_FLEET = Path(__file__).resolve().parent.parent / "scenarios/fleets/one-of-each.yaml"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip())
    if match is None:
        raise typer.BadParameter(f"{text!r}: use a number and s, m, h or d, such as 90m or 7d")
    return timedelta(seconds=float(match[1]) * _UNITS[match[2]])


def _speed(text: str) -> Speed:
    try:
        return Speed.parse(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


class _Sink:
    """Where records go: Kafka (one topic per channel) or a record file."""

    def __init__(self, target: str, settings: Settings | None) -> None:
        self.target = target
        self.settings = settings

    def run(self, records: Iterable[SimRecord]) -> int:
        if self.target == "kafka":
            from energywatch.kafka_topics import ensure_topics
            from simulators.kafka_sink import KafkaRecordSink

            assert self.settings is not None
            ensure_topics(self.settings)
            topics = {
                Channel.READINGS: self.settings.readings_topic,
                Channel.PRODUCTION: self.settings.production_topic,
                Channel.VOC: self.settings.voc_topic,
            }
            with KafkaRecordSink(self.settings.kafka_bootstrap, topics) as sink:
                for record in records:
                    sink.send(record)
                return sink.sent
        from simulators.record_file import write_records

        return write_records(Path(self.target), records)


def _counted(
    records: Iterable[SimRecord], counts: Counter[str], progress: Progress, task: TaskID
) -> Iterator[SimRecord]:
    for n, record in enumerate(records, start=1):
        counts[record.channel.value] += 1
        counts["malformed"] += record.malformed
        if n % 5000 == 0:
            progress.update(task, completed=n)
        yield record


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
    )


def _summary(title: str, counts: Counter[str], elapsed: float, extra: dict[str, str]) -> None:
    total = sum(v for k, v in counts.items() if k != "malformed")
    table = Table(title=title, show_header=False)
    for channel in Channel:
        table.add_row(f"{channel.value} records", f"{counts[channel.value]:,}")
    table.add_row("malformed on purpose", f"{counts['malformed']:,}")
    for key, value in extra.items():
        table.add_row(key, value)
    table.add_row("elapsed", f"{elapsed:.1f}s ({total / max(elapsed, 1e-9):,.0f} records/s)")
    console.print(table)


def simulate(
    scenario: Annotated[
        Path | None,
        typer.Option(help="A scenario file (scenarios/*.yaml): fleet, period, situations, faults"),
    ] = None,
    fleet: Annotated[
        Path | None, typer.Option(help="A fleet file, when not running a scenario")
    ] = None,
    to: Annotated[
        str, typer.Option(help="'kafka', or a file: NAME.jsonl or NAME.jsonl.gz")
    ] = "kafka",
    start: Annotated[
        datetime | None,
        typer.Option(help="First interval, UTC unless an offset is given (default: scenario's)"),
    ] = None,
    duration: Annotated[
        str | None, typer.Option(help="Simulated time to cover, e.g. 6h, 7d (default: 1d)")
    ] = None,
    count: Annotated[int | None, typer.Option(min=1, help="Stop after this many records")] = None,
    speed: Annotated[
        str, typer.Option(help="max, realtime, or a factor such as 60x (simulated s per s)")
    ] = "max",
    rate: Annotated[float | None, typer.Option(min=1, help="At most this many records/s")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the fleet's seed")] = None,
) -> None:
    """Generate deterministic simulated data and send it to Kafka or write it to a file.

    The same scenario (or fleet), seed and start give byte-identical output. Records carry
    event time in their payload; --speed paces sending by the devices' emission times.
    """
    from simulators.energy import EnergyModel
    from simulators.fleet import FleetConfig, build_fleet
    from simulators.runner import Simulation, SimulationPlan
    from simulators.scenario import load_scenario

    if scenario is not None and fleet is not None:
        raise typer.BadParameter("give --scenario or --fleet, not both")
    pace = _speed(speed)
    try:
        if scenario is not None:
            loaded = load_scenario(scenario)
            plan = loaded.plan
            if seed is not None:
                raise typer.BadParameter("a scenario fixes its seed; edit the scenario instead")
        else:
            from energywatch.config_files import load_model_file

            config = load_model_file(FleetConfig, fleet or DEFAULT_FLEET, "fleet file")
            if seed is not None:
                config = config.model_copy(update={"seed": seed})
            today = datetime.now(UTC).replace(hour=16, minute=0, second=0, microsecond=0)
            plan = SimulationPlan(EnergyModel(build_fleet(config)), today - timedelta(days=1))
    except ConfigFileError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    if start is not None:
        plan.start = start if start.tzinfo else start.replace(tzinfo=UTC)
    if duration is not None:
        plan.end = plan.start + parse_duration(duration)
    elif plan.end is None:
        plan.end = plan.start + timedelta(days=1)
    elif start is not None:
        plan.end = plan.start + (plan.end - plan.start)
    sink = _Sink(to, Settings.load() if to == "kafka" else None)
    simulation = Simulation(plan)
    counts: Counter[str] = Counter()
    meters = plan.energy.fleet.meter_count()
    minutes = int((plan.end - plan.start).total_seconds() // 60)
    expected = int((plan.end - plan.start) / plan.energy.interval) * meters + len(
        plan.voc_monitors
    ) * (minutes + minutes // 60)
    started = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task(f"simulating to {to}", total=count or expected, rate="")
        records: Iterable[SimRecord] = simulation.records()
        if count is not None:
            records = (r for r, _ in zip(records, range(count), strict=False))
        records = paced(records, pace, max_rate=rate) if pace.factor or rate else records
        sent = sink.run(_counted(records, counts, progress, task))
        progress.update(task, completed=sent)
    elapsed = time.perf_counter() - started
    units = len(plan.energy.fleet.enterprises)
    _summary(
        "simulated",
        counts,
        elapsed,
        {
            "fleet": f"{plan.energy.fleet.name}: {units} units, {meters} meters",
            "event time": f"{plan.start.isoformat()} .. {plan.end.isoformat()}",
            "faults fired": f"{len(simulation.injector.events):,}",
            "written to": to,
        },
    )


def replay(
    file: Annotated[Path, typer.Argument(help="A record file written by simulate (.jsonl[.gz])")],
    speed: Annotated[
        str, typer.Option(help="max, realtime, or a factor such as 60x (simulated s per s)")
    ] = "max",
    rate: Annotated[float | None, typer.Option(min=1, help="At most this many records/s")] = None,
    to: Annotated[str, typer.Option(help="'kafka', or another record file")] = "kafka",
) -> None:
    """Send a recorded simulation again, in its original order, paced by its emission times.

    Payloads go unchanged, so event time is preserved; a meter's records keep their order (one
    key, one partition).
    """
    from simulators.record_file import RecordFileError, read_records

    if not file.exists():
        console.print(
            f"[red]{file} does not exist[/red]: write one with `energywatch simulate --to {file}`"
        )
        raise typer.Exit(2)
    pace = _speed(speed)
    sink = _Sink(to, Settings.load() if to == "kafka" else None)
    counts: Counter[str] = Counter()
    started = time.perf_counter()
    try:
        with _progress() as progress:
            task = progress.add_task(f"replaying {file.name} at {pace}", total=None, rate="")
            records: Iterable[SimRecord] = read_records(file)
            records = paced(records, pace, max_rate=rate) if pace.factor or rate else records
            sink.run(_counted(records, counts, progress, task))
    except RecordFileError as exc:
        console.print(f"[red]{file}: {exc}[/red]")
        raise typer.Exit(2) from exc
    _summary("replayed", counts, time.perf_counter() - started, {"speed": str(pace), "to": to})
