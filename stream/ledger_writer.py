"""One batch of readings made durable: ledger rows, rollups, dirty marks for the alert
evaluator and the stream's own state, all in one transaction (the adapter around
``stream.accounting``).

    lock the batch's partitions' progress        (skips what an earlier transaction did)
    load the counter meters' states not cached
    core: account the records                    (dead letters, ledger rows, watermarks)
    ledger: insert the new rows; reconcile the keys already there (duplicates, corrections)
    rollups: add the contributions of new and corrected rows
    alert evaluator: mark the units whose rollups changed, from their earliest period
    dead letters: sent and acknowledged by Kafka before the commit
    save progress and counter states; commit

A crash anywhere before the commit leaves nothing; after it, the redelivered records are
below ``next_offset`` and skipped. So each record is accounted exactly once, and the rollups
equal those of an uninterrupted run.
"""

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import psycopg
from psycopg.rows import TupleRow

from contracts.dead_letters import DeadLetter
from storage import alert_dirty, ledger, rollups, stream_state
from stream.accounting import (
    Accountant,
    Accounted,
    LedgerRow,
    Settled,
    contributions,
    counter_meters,
    dead_letter,
    decode_records,
    settle,
)
from stream.batch import RawRecord
from stream.counters import CounterConfig, CounterTracker

SendDeadLetters = Callable[[Sequence[DeadLetter]], Awaitable[None]]


@dataclass(frozen=True)
class BatchResult:
    records: int
    skipped: int  # already made durable by an earlier transaction
    inserted: int  # new ledger rows (aggregated or not)
    duplicates: int  # repeats, in the batch or of stored rows
    corrections: int  # stored rows replaced by a corrected version
    too_late: int  # stored, not aggregated
    rollup_rows: int
    dead_letters: list[DeadLetter]
    #: units marked for the alert evaluator (their rollups changed)
    dirty_units: int
    #: seconds spent in each stage of the batch, for the stage histogram and the benchmark
    stages: dict[str, float]


class _Laps:
    """Seconds per stage: ``lap(name)`` ends the stage running since the previous lap."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._last
        self._last = now


class LedgerWriter:
    """Holds the core and the counter-state cache for one worker process."""

    def __init__(
        self,
        accountant: Accountant,
        consumer: str,
        counter_config: CounterConfig | None = None,
    ) -> None:
        self.accountant = accountant
        self.consumer = consumer
        self._tracker = CounterTracker(counter_config or CounterConfig())
        #: each partition's next offset as this process last committed it: if the database
        #: says otherwise, another worker has had the partition and cached states are stale
        self._committed: dict[tuple[str, int], int] = {}

    def forget_cache(self) -> None:
        self._tracker.forget()
        self._committed.clear()

    async def write(
        self,
        conn: psycopg.AsyncConnection[TupleRow],
        records: Sequence[RawRecord],
        now: datetime,
        send_dead_letters: SendDeadLetters,
    ) -> BatchResult:
        try:
            return await self._write(conn, records, now, send_dead_letters)
        except BaseException:
            self.forget_cache()  # the tracker may hold states the rollback undid
            raise

    async def _write(
        self,
        conn: psycopg.AsyncConnection[TupleRow],
        records: Sequence[RawRecord],
        now: datetime,
        send_dead_letters: SendDeadLetters,
    ) -> BatchResult:
        laps = _Laps()
        decoded = decode_records(records)
        laps.lap("decode")
        topics = {r.topic for r in records}
        if len(topics) > 1:
            raise ValueError(f"one topic per batch, got {sorted(topics)}")
        topic = next(iter(topics), "")
        async with conn.transaction(), conn.cursor() as cur:
            partitions = await stream_state.lock_partitions(
                cur, self.consumer, topic, (r.partition for r in records)
            )
            for p, state in partitions.items():
                remembered = self._committed.get((topic, p))
                if remembered is not None and remembered != state.next_offset:
                    self._tracker.forget()
            needed = [m for m in counter_meters(decoded) if self._tracker.meter_state(m) is None]
            self._tracker.import_meters(await stream_state.load_counter_states(cur, needed))
            laps.lap("load_state")

            accounting = self.accountant.account(decoded, partitions, self._tracker, now)
            laps.lap("account")
            # each key's versions applied to no stored row: what to insert if the key is new
            fresh = [(a, settle(a, None)) for a in accounting.rows]
            new_keys = await ledger.insert_new(cur, [s.row for _, s in fresh if s.row is not None])
            laps.lap("ledger_insert")
            inserted: list[Accounted] = []
            settled: list[Settled] = []
            clashing: list[Accounted] = []
            for a, outcome in fresh:
                if a.row.key in new_keys and outcome.row is not None:
                    inserted.append(replace(a, row=outcome.row, earlier=()))
                    settled.append(outcome)
                else:
                    clashing.append(a)
            stored = await ledger.load(cur, [a.row.key for a in clashing])
            replaced: list[tuple[LedgerRow, LedgerRow, datetime | None]] = []
            for new in clashing:
                old = stored[new.row.key]
                outcome = settle(new, old)
                settled.append(outcome)
                if outcome.row is not None:
                    replaced.append((old, outcome.row, new.watermark))
            rejected = [
                dead_letter(version.record, "too_late_correction", reason, now)
                for outcome in settled
                for version, reason in outcome.rejected
            ]
            await ledger.replace(cur, [r for _, r, _ in replaced])
            laps.lap("ledger_reconcile")
            changes = contributions(inserted, replaced, self.accountant.register)
            laps.lap("contributions")
            touched = await rollups.add_contributions(cur, changes)
            laps.lap("rollups_upsert")
            changed = [a.row for a in inserted] + [r for _, r, _ in replaced]
            dirty = alert_dirty.earliest_by_unit(
                (r.enterprise_code, r.period_start) for r in changed if r.aggregated
            )
            await alert_dirty.mark_dirty(cur, "readings", dirty)
            letters = accounting.dead_letters + rejected
            laps.lap("mark_dirty")
            if letters:
                await send_dead_letters(letters)
            laps.lap("dead_letters")
            await stream_state.save_partitions(
                cur,
                self.consumer,
                topic,
                accounting.partitions,
                self.accountant.config.grace.total_seconds(),
            )
            laps.lap("save_progress")
            await stream_state.save_counter_states(
                cur, self._tracker.export_meters(accounting.counter_meters)
            )
            laps.lap("save_counter_states")
        laps.lap("commit")
        for p, state in accounting.partitions.items():
            self._committed[(topic, p)] = state.next_offset
        return BatchResult(
            records=len(records),
            skipped=accounting.skipped,
            inserted=len(inserted),
            duplicates=sum(s.duplicates for s in settled),
            corrections=sum(s.corrections for s in settled),
            too_late=accounting.too_late,
            rollup_rows=touched,
            dead_letters=letters,
            dirty_units=len(dirty),
            stages=laps.seconds,
        )
