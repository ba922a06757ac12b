"""Energy accounting for one batch of readings (pure: no IO, no clock).

The worker's storage adapter loads the state this needs (where each partition is, the counter
meters' states), calls :meth:`Accountant.account`, writes the resulting ledger rows, and asks
:func:`contributions` what each new or replaced row adds to the rollups. Everything that
decides a number lives here; the adapter only moves rows.

Per record, in offset order within its partition:

1. **Already done?** A record below the partition's ``next_offset`` was made durable by an
   earlier transaction (a redelivery after a crash or a rebalance) and is skipped, so every
   decision below is taken once per record, with the state that preceded it.
2. **Decode**; a bad record or one dated in the future becomes a dead letter with its reason.
3. **Lateness.** Each partition has a watermark: the latest interval end it has seen, minus
   ``grace``. A reading whose interval ended at or before ``watermark - allowed_lateness`` is
   *too late*: stored in the ledger with ``aggregated = False``, counted and reported, but not
   added to any rollup (and not fed to the counter tracker: for a counter meter, the energy
   comes back in its next on-time interval). Watermarks are per partition because a partition
   is one ordered stream, so the decisions do not depend on which worker holds it.
4. **Counters** to interval consumption (``stream.counters``), with quality flags.
5. **Standard coal** (``stream.standard_coal``), rounded to 1e-9 t per reading: sums of the
   rounded values are exact in the database, whatever the order they arrive in.

Within a batch, the versions of a key (meter, period) are kept in order on one
:class:`Accounted`; :func:`settle` applies them one by one to the stored row (or to none), each
with :func:`reconcile`'s rule: an identical repeat is a duplicate, a different version a
correction. So where batches are cut changes nothing.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Final

from contracts.dead_letters import DeadLetter
from contracts.readings import EnergyType, Reading, ReadingDecodeError, decode_reading
from plans.register import Register
from stream.batch import RawRecord
from stream.batch import dead_letter as _dead_letter
from stream.counters import CounterTracker, Flag
from stream.data_quality import off_period_start
from stream.standard_coal import StandardCoal
from stream.windows import WindowSize, window_end, window_start

STAGE: Final = "stream.readings"
TCE_DECIMALS: Final = 9
#: where a unit the register does not know is counted in the regional rollups
UNREGISTERED: Final = "unregistered"
#: flags counted per category in the rollups
_STUCK: Final = frozenset({Flag.STUCK.value})
_JUMPS: Final = frozenset({Flag.IMPLAUSIBLE_JUMP.value})
_RESETS: Final = frozenset({Flag.RESET.value, Flag.ROLLOVER.value})
OFF_PERIOD_START: Final = "off_period_start"
WINDOW_SIZES: Final = (WindowSize.QUARTER_HOUR, WindowSize.HOUR, WindowSize.DAY, WindowSize.MONTH)


@dataclass(frozen=True, slots=True)
class AccountingConfig:
    #: readings whose interval ended this long before the watermark are still aggregated
    allowed_lateness: timedelta = timedelta(days=7)
    #: how far the watermark trails the latest interval end seen in the partition
    grace: timedelta = timedelta(minutes=30)
    #: readings dated further than this after ``now`` are dead-lettered, not trusted to move
    #: the watermark
    future_tolerance: timedelta = timedelta(minutes=5)


@dataclass(slots=True)
class PartitionState:
    """Where a partition's processing stands (stored with the rows, in one transaction)."""

    next_offset: int = 0
    max_event_end: datetime | None = None
    too_late: int = 0

    def watermark(self, grace: timedelta) -> datetime | None:
        return None if self.max_event_end is None else self.max_event_end - grace


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """A reading as the ledger (``meter_readings``) stores it: as sent, and as accounted."""

    meter_id: str
    period_start: datetime
    enterprise_code: str
    energy_type: str
    interval_seconds: int
    physical_quantity: float | None  # the consumption the meter reported, if any
    physical_counter: float | None
    physical_unit: str
    source: str
    consumption: float | None  # the consumption accounted (from the counter when there is one)
    tce: float | None  # None for water
    tce_equivalent: float | None
    counted: bool
    exclusion: str | None
    quality_flags: tuple[str, ...]
    aggregated: bool
    #: how many times the row was overwritten by a different version of the reading
    revision: int = 0

    @property
    def key(self) -> tuple[str, datetime]:
        return (self.meter_id, self.period_start)

    def as_sent(self) -> tuple[object, ...]:
        """What the meter sent: two rows equal in this are one reading delivered twice,
        however differently the stream accounted them (a counter tracker sees a repeat as a
        duplicate with no consumption of its own)."""
        return (
            self.meter_id,
            self.period_start,
            self.enterprise_code,
            self.energy_type,
            self.interval_seconds,
            self.physical_quantity,
            self.physical_counter,
            self.source,
        )


@dataclass(frozen=True, slots=True)
class Accounted:
    """A ledger row to write, and the watermark it met (to tell corrections from news)."""

    row: LedgerRow
    record: RawRecord  # the record it came from
    watermark: datetime | None
    #: earlier versions of the same key in this batch, oldest first (each without its own)
    earlier: tuple["Accounted", ...] = ()

    def versions(self) -> tuple["Accounted", ...]:
        """Every version of the key in the batch, in offset order."""
        if not self.earlier:
            return (self,)
        return (*self.earlier, replace(self, earlier=()))


@dataclass
class Accounting:
    """What one batch comes to."""

    rows: list[Accounted] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    #: decoded on-time readings, for the alert rules
    readings: list[Reading] = field(default_factory=list)
    partitions: dict[int, PartitionState] = field(default_factory=dict)
    #: counter meters whose state changed: to store
    counter_meters: set[str] = field(default_factory=set)
    skipped: int = 0  # records already made durable by an earlier transaction
    too_late: int = 0


def _tce(value: float | None) -> float | None:
    return None if value is None else round(value, TCE_DECIMALS)


class Accountant:
    """Turns raw records into ledger rows; holds no state between batches but caches."""

    def __init__(
        self, register: Register, coal: StandardCoal, config: AccountingConfig | None = None
    ) -> None:
        self.register = register
        self.coal = coal
        self.config = config or AccountingConfig()

    def account(
        self,
        records: Sequence["Decoded"],
        partitions: Mapping[int, PartitionState],
        counters: CounterTracker,
        now: datetime,
    ) -> Accounting:
        """Decide every record of a batch (from :func:`decode_records`). ``partitions`` (the
        state before the batch) is not changed; the states after it are in the result.
        ``counters`` is advanced in place."""
        config = self.config
        result = Accounting(
            partitions={p: replace(s) for p, s in partitions.items()},
        )
        latest: dict[tuple[str, datetime], int] = {}  # key -> index in result.rows
        future_limit = now + config.future_tolerance
        meters = self.register.meters_by_id
        for record, decoded in sorted(records, key=lambda d: (d[0].partition, d[0].offset)):
            state = result.partitions.setdefault(record.partition, PartitionState())
            if record.offset < state.next_offset:
                result.skipped += 1
                continue
            state.next_offset = record.offset + 1
            try:
                if isinstance(decoded, ReadingDecodeError):
                    raise decoded
                reading = decoded
                ends = reading.period_start + timedelta(seconds=reading.interval_seconds)
                if ends > future_limit:  # the end, which moves the watermark
                    raise ReadingDecodeError(
                        "future_timestamp",
                        f"the interval from {reading.period_start.isoformat()} ends "
                        f"{ends.isoformat()}, after now ({now.isoformat()}) + "
                        f"{config.future_tolerance}: check the meter's clock",
                    )
            except ReadingDecodeError as exc:
                result.dead_letters.append(dead_letter(record, exc.kind, exc.reason, now))
                continue
            end = reading.period_start + timedelta(seconds=reading.interval_seconds)
            watermark = state.watermark(config.grace)
            too_late = watermark is not None and end <= watermark - config.allowed_lateness
            flags: list[str] = []
            consumption = reading.physical_quantity
            if not too_late and reading.physical_counter is not None:
                observed = counters.observe_reading(reading)
                assert observed is not None
                consumption = observed.consumption
                flags.extend(sorted(f.value for f in observed.flags))
                result.counter_meters.add(reading.meter_id)
            if off_period_start(reading.period_start, timedelta(seconds=reading.interval_seconds)):
                flags.append(OFF_PERIOD_START)
            meter = meters.get(reading.meter_id)
            exclusion = meter.excluded_from_totals if meter is not None else None
            amount = None
            if consumption is not None:
                amount = self.coal.convert(
                    reading.energy_type, consumption, reading.period_start, exclusion
                )
            row = LedgerRow(
                meter_id=reading.meter_id,
                period_start=reading.period_start,
                enterprise_code=reading.enterprise_code,
                energy_type=reading.energy_type.value,
                interval_seconds=reading.interval_seconds,
                physical_quantity=reading.physical_quantity,
                physical_counter=reading.physical_counter,
                physical_unit=reading.physical_unit,
                source=reading.source,
                consumption=consumption,
                tce=None if amount is None else _tce(amount.tce),
                tce_equivalent=None
                if amount is None
                else _tce(amount.tce if amount.tce_equivalent is None else amount.tce_equivalent),
                counted=exclusion is None,
                exclusion=exclusion,
                quality_flags=tuple(flags),
                aggregated=not too_late,
            )
            if too_late:
                state.too_late += 1
                result.too_late += 1
            else:
                result.readings.append(reading)
                if state.max_event_end is None or end > state.max_event_end:
                    state.max_event_end = end
            index = latest.get(row.key)
            if index is None:
                latest[row.key] = len(result.rows)
                result.rows.append(Accounted(row, record, watermark))
                continue
            # the key came earlier in this batch: keep every version, for settle()
            before = result.rows[index]
            result.rows[index] = Accounted(row, record, watermark, before.versions())
        return result


Decoded = tuple[RawRecord, Reading | ReadingDecodeError]


def decode_records(records: Iterable[RawRecord]) -> list[Decoded]:
    """Each record with its reading or why it is not one (decoding needs no state, so it can
    happen before the transaction that decides what the readings mean)."""
    out: list[Decoded] = []
    for record in records:
        if record.value is None:
            out.append((record, ReadingDecodeError("empty", "empty record: a reading needs JSON")))
            continue
        try:
            out.append((record, decode_reading(record.value)))
        except ReadingDecodeError as exc:
            out.append((record, exc))
    return out


def counter_meters(decoded: Iterable[Decoded]) -> set[str]:
    """The meters among these that report a counter: whose state the accounting needs."""
    return {
        d.meter_id
        for _, d in decoded
        if not isinstance(d, ReadingDecodeError) and d.physical_counter is not None
    }


def dead_letter(record: RawRecord, kind: str, reason: str, now: datetime) -> DeadLetter:
    """A readings record's dead letter."""
    return _dead_letter(STAGE, record, kind, reason, now)


@dataclass(frozen=True, slots=True)
class Reconciled:
    """A batch row met a stored one with the same key: what to write over it, if anything."""

    #: the row to write over the stored one (a correction); None: keep the stored row
    replacement: LedgerRow | None
    #: the new row is a correction beyond the allowed lateness: dead-letter it with this reason
    rejected_reason: str | None = None


def reconcile(new: Accounted, stored: LedgerRow) -> Reconciled:
    """What to do when one version ``new`` meets the ``stored`` row with its key."""
    row = new.row
    if row.as_sent() == stored.as_sent():
        return Reconciled(None)  # the same reading delivered again
    if stored.aggregated and not row.aggregated:
        return Reconciled(
            None,
            rejected_reason=(
                f"a correction of {stored.meter_id} at {stored.period_start.isoformat()} arrived "
                "beyond the allowed lateness: the stored reading and its rollups are kept; "
                "correct them by hand if the new value is right"
            ),
        )
    if Flag.OUT_OF_ORDER.value in row.quality_flags and stored.consumption is not None:
        # a corrected counter older than the meter's latest: the consumption around it was
        # derived from the old value and is in the totals; keep it, store what was sent
        row = replace(
            row,
            consumption=stored.consumption,
            tce=stored.tce,
            tce_equivalent=stored.tce_equivalent,
        )
    return Reconciled(replace(row, revision=stored.revision + 1))


@dataclass(frozen=True, slots=True)
class Settled:
    """What a batch's versions of one key come to, applied in order to the stored row."""

    #: the row the key now has; None: the stored row stays as it is
    row: LedgerRow | None
    duplicates: int = 0  # versions identical to the one before
    corrections: int = 0  # versions that overwrote a different one
    #: versions refused (corrections beyond the allowed lateness), each with its reason
    rejected: tuple[tuple[Accounted, str], ...] = ()


def settle(new: Accounted, stored: LedgerRow | None) -> Settled:
    """Apply ``new``'s versions one by one to ``stored`` (None: the key is new to the ledger)."""
    current, changed = stored, False
    duplicates = corrections = 0
    rejected: list[tuple[Accounted, str]] = []
    for version in new.versions():
        if current is None:
            current, changed = version.row, True
            continue
        outcome = reconcile(version, current)
        if outcome.replacement is not None:
            current, changed = outcome.replacement, True
            corrections += 1
        elif outcome.rejected_reason is not None:
            rejected.append((version, outcome.rejected_reason))
        else:
            duplicates += 1
    return Settled(current if changed else None, duplicates, corrections, tuple(rejected))


@dataclass(frozen=True, slots=True)
class Dimensions:
    county: str
    city: str
    industry: str


@dataclass(frozen=True, slots=True)
class Contribution:
    """What one ledger row adds to (sign 1) or takes from (sign -1) every rollup it is in.

    The storage adapter fans it out over subjects (meter, unit, county, city, industry; each
    with its energy type, and with 'all' unless water) and windows (15m, 1h, 1d, 1mo).
    """

    meter_id: str
    enterprise_code: str
    dims: Dimensions
    energy_type: str
    physical_unit: str
    windows: tuple[tuple[datetime, datetime], ...]  # (start, end) per WINDOW_SIZES
    closed: tuple[bool, ...]  # per WINDOW_SIZES: the window had closed when this arrived
    physical: float
    tce: float
    tce_counted: float
    tce_equivalent: float
    readings: int
    covered_seconds: int
    flagged: int
    stuck: int
    jumps: int
    resets: int
    off_period_start: int

    @property
    def in_all(self) -> bool:
        """Whether it belongs in the 'all' energy type: every energy except water."""
        return self.energy_type != EnergyType.WATER.value


_windows_cache: dict[datetime, tuple[tuple[datetime, datetime], ...]] = {}


def windows_of(at: datetime) -> tuple[tuple[datetime, datetime], ...]:
    """The (start, end) of the 15m, 1h, 1d and 1mo windows containing ``at`` (CST days)."""
    cached = _windows_cache.get(at)
    if cached is None:
        if len(_windows_cache) > 100_000:
            _windows_cache.clear()
        starts = [window_start(at, size) for size in WINDOW_SIZES]
        cached = _windows_cache[at] = tuple(
            (start, window_end(start, size))
            for start, size in zip(starts, WINDOW_SIZES, strict=True)
        )
    return cached


def _signed(value: float | None, sign: int) -> float:
    if value is None:
        return 0.0
    return -value if sign < 0 else value


def contribution(
    row: LedgerRow, sign: int, watermark: datetime | None, register: Register
) -> Contribution:
    """``row``'s part in the rollups (``sign`` -1 to take back a replaced row)."""
    enterprise = register.enterprises_by_code.get(row.enterprise_code)
    dims = (
        Dimensions(enterprise.county, enterprise.city, enterprise.industry)
        if enterprise is not None
        else Dimensions(UNREGISTERED, UNREGISTERED, UNREGISTERED)
    )
    windows = windows_of(row.period_start)
    closed = tuple(watermark is not None and end <= watermark for _, end in windows)
    flags = frozenset(row.quality_flags)
    tce = _signed(row.tce, sign)
    return Contribution(
        meter_id=row.meter_id,
        enterprise_code=row.enterprise_code,
        dims=dims,
        energy_type=row.energy_type,
        physical_unit=row.physical_unit,
        windows=windows,
        closed=closed if sign > 0 else (False,) * len(windows),
        physical=_signed(row.consumption, sign),
        tce=tce,
        tce_counted=tce if row.counted else 0.0,
        tce_equivalent=_signed(row.tce_equivalent, sign),
        readings=sign,
        covered_seconds=sign * row.interval_seconds,
        flagged=sign if flags else 0,
        stuck=sign if flags & _STUCK else 0,
        jumps=sign if flags & _JUMPS else 0,
        resets=sign if flags & _RESETS else 0,
        off_period_start=sign if OFF_PERIOD_START in flags else 0,
    )


def contributions(
    inserted: Iterable[Accounted],
    replaced: Iterable[tuple[LedgerRow, LedgerRow, datetime | None]],
    register: Register,
) -> list[Contribution]:
    """What the rows new to the ledger, and the (stored, replacement, watermark) triples that
    corrected a stored row, add to the rollups. Rows not aggregated (too late) add nothing."""
    out = [contribution(a.row, 1, a.watermark, register) for a in inserted if a.row.aggregated]
    for stored, replacement, watermark in replaced:
        if stored.aggregated:
            out.append(contribution(stored, -1, watermark, register))
        if replacement.aggregated:
            out.append(contribution(replacement, 1, watermark, register))
    return out
