"""What the evaluator judges first, against the real TimescaleDB: a VOC sample's marks are not
held up by the readings rules over every unit a stream batch touched, nor by a sweep; and
neither the readings nor the sweep wait more than one pass for it (``energywatch bench
alerts`` measures the latency this saves).

The rule inputs are a test-local stand-in (a sibling module, not a service) that records
what each pass asked about."""

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from prometheus_client import CollectorRegistry

from alerts.evaluator import Evaluator
from alerts.metrics import EvaluatorMetrics
from alerts.rules.condition import Condition
from contracts.alert_commands import DeclareEmergency
from energywatch.settings import Settings
from storage.alert_dirty import Dirty, Source, mark_dirty

pytestmark = pytest.mark.services

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
METERED = "91350100M000100Y43"  # a unit whose meter readings changed
MONITORED = "91350100M000200Y1H"  # a unit whose VOC monitor sent a sample


@dataclass
class RecordingInputs:
    """Records, pass by pass, which marks were judged and whether it was a sweep."""

    passes: list[tuple[str, ...]] = field(default_factory=list)
    slow_first_pass_seconds: float = 0.0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    async def until(self, what: str, done: Callable[[list[tuple[str, ...]]], bool]) -> None:
        while not done(self.passes):
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), 15)
            except TimeoutError:
                pytest.fail(f"timed out waiting for {what}; passes so far: {self.passes}")

    async def on_dirty(self, conn: Any, dirty: Sequence[Dirty], now: datetime) -> list[Condition]:
        self.passes.append(tuple(sorted(f"{d.source}:{d.enterprise_code}" for d in dirty)))
        self.changed.set()
        if len(self.passes) == 1 and self.slow_first_pass_seconds:
            await asyncio.sleep(self.slow_first_pass_seconds)
        return []

    async def on_tick(self, conn: Any, now: datetime) -> list[Condition]:
        self.passes.append(("sweep",))
        self.changed.set()
        return []

    def declare_emergency(self, command: DeclareEmergency) -> None:
        return None

    def snapshot(self) -> dict[str, Any]:
        return {}


def evaluator(settings: Settings, inputs: RecordingInputs) -> Evaluator:
    def load(_snapshot: Mapping[str, Any] | None) -> RecordingInputs:
        return inputs

    return Evaluator(
        settings, EvaluatorMetrics.create(CollectorRegistry()), load, lambda _event: None
    )


async def mark(settings: Settings, marks: Mapping[str, Source], since: datetime = T0) -> None:
    """What stream batches do: mark units dirty (and NOTIFY) in their transactions."""
    url = settings.database_url.get_secret_value()
    async with await psycopg.AsyncConnection.connect(url) as conn, conn.cursor() as cur:
        for code, source in marks.items():
            await mark_dirty(cur, source, {code: since})
        await conn.commit()


async def pending(settings: Settings) -> list[tuple[str, str, datetime]]:
    url = settings.database_url.get_secret_value()
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute("SELECT source, enterprise_code, since FROM alert_dirty")
        return [(str(s), str(c), t) for s, c, t in await cur.fetchall()]


def test_voc_marks_are_judged_before_the_readings_marks_that_came_with_them(
    database_settings,
) -> None:
    inputs = RecordingInputs()
    ev = evaluator(database_settings, inputs)

    async def scenario() -> list[tuple[str, str, datetime]]:
        async with ev.leading():
            await mark(database_settings, {METERED: "readings", MONITORED: "voc"})
            await ev.evaluate()
            left = await pending(database_settings)
            await ev.evaluate()
            await ev.evaluate()
        return left

    left = asyncio.run(scenario())
    assert inputs.passes == [(f"voc:{MONITORED}",), (f"readings:{METERED}",)]
    # put back as it was claimed: from the same event time on
    assert left == [("readings", METERED, T0)]


def test_readings_marks_wait_one_pass_at_most_however_much_voc_keeps_coming(
    database_settings,
) -> None:
    inputs = RecordingInputs()
    ev = evaluator(database_settings, inputs)

    async def scenario() -> None:
        async with ev.leading():
            await mark(database_settings, {METERED: "readings", MONITORED: "voc"})
            await ev.evaluate()
            await mark(database_settings, {MONITORED: "voc"}, T0 + timedelta(minutes=1))
            await ev.evaluate()

    asyncio.run(scenario())
    assert inputs.passes == [
        (f"voc:{MONITORED}",),
        (f"readings:{METERED}", f"voc:{MONITORED}"),
    ]


def test_a_sweep_and_a_readings_only_pass_take_every_mark_at_once(database_settings) -> None:
    inputs = RecordingInputs()
    ev = evaluator(database_settings, inputs)

    async def scenario() -> None:
        async with ev.leading():
            await mark(database_settings, {METERED: "readings", MONITORED: "voc"})
            await ev.evaluate(sweep=True)
            await mark(database_settings, {METERED: "readings"})
            await ev.evaluate()

    asyncio.run(scenario())
    assert inputs.passes == [
        (f"readings:{METERED}", f"voc:{MONITORED}"),
        ("sweep",),
        (f"readings:{METERED}",),
    ]


def test_a_due_sweep_waits_for_the_pass_of_what_was_notified_and_then_follows(
    database_settings,
) -> None:
    """Sweeps every second; the first notified pass takes 1.5 s, so when it ends a sweep is
    due and another VOC sample has been notified: that sample's pass comes first (no sweep
    in it), the sweep right after."""
    settings = database_settings.model_copy(update={"evaluator_sweep_seconds": 1.0})
    inputs = RecordingInputs(slow_first_pass_seconds=1.5)
    ev = evaluator(settings, inputs)

    async def scenario() -> None:
        task = asyncio.create_task(ev.run())
        try:
            await inputs.until("the catch-up sweep", lambda p: ("sweep",) in p)
            await mark(settings, {MONITORED: "voc"})
            await inputs.until("the slow pass to start", lambda p: len(p) >= 2)
            await mark(settings, {METERED: "voc"}, T0 + timedelta(minutes=1))
            await inputs.until("two more passes", lambda p: len(p) >= 4)
        finally:
            ev.stop()
            await asyncio.wait_for(task, 30)

    asyncio.run(scenario())
    assert inputs.passes[:4] == [
        ("sweep",),
        (f"voc:{MONITORED}",),
        (f"voc:{METERED}",),
        ("sweep",),
    ]
