"""Compression and retention policies for the hypertables, where the edition has them.

Under the Timescale license (the docker-compose image) the raw hypertables are compressed once
their chunks are older than the stream will still correct, and raw data can be dropped after a
configured age; rollups are kept (they are what reports are made from). The Apache edition
built locally has neither, so :func:`plan_policies` marks every policy skipped with the reason
and :func:`apply_policies` executes nothing. Policies are added with ``if_not_exists``, so
applying them on every start is safe.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import psycopg
from psycopg.rows import TupleRow

from storage.edition import TimescaleEdition, detect_edition


@dataclass(frozen=True, slots=True)
class CompressedTable:
    table: str
    segment_by: str  # rows of one series sit together in a compressed batch
    order_by: str


#: the raw hypertables and how their compressed rows are grouped
COMPRESSED: tuple[CompressedTable, ...] = (
    CompressedTable("meter_readings", "meter_id", "period_start"),
    CompressedTable("voc_samples", "mn, pollutant", "data_time"),
)


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    #: compress raw chunks older than this; must exceed the stream's allowed lateness, since a
    #: correction of a compressed row is slow (and impossible before TimescaleDB 2.11)
    compress_after: timedelta = timedelta(days=30)
    #: drop raw rows older than this; None keeps them (plans are judged over five years)
    raw_retention: timedelta | None = None
    allowed_lateness: timedelta = timedelta(days=7)

    def __post_init__(self) -> None:
        if self.compress_after <= self.allowed_lateness:
            raise ValueError(
                f"compress_after ({self.compress_after}) must be longer than the allowed "
                f"lateness ({self.allowed_lateness}): late corrections would hit compressed rows"
            )
        if self.raw_retention is not None and self.raw_retention <= self.compress_after:
            raise ValueError("raw_retention must be longer than compress_after")


@dataclass(frozen=True, slots=True)
class Policy:
    table: str
    kind: str  # 'compression settings', 'compression policy', 'retention policy'
    statements: tuple[tuple[str, tuple[object, ...]], ...]
    skipped: str | None = None  # why it is not applied here
    #: a query returning true when the policy is in place already (then nothing runs)
    done_if: tuple[str, tuple[object, ...]] | None = None


@dataclass(frozen=True, slots=True)
class PolicyReport:
    edition: TimescaleEdition
    policies: tuple[Policy, ...] = field(default_factory=tuple)

    @property
    def applied(self) -> list[Policy]:
        return [p for p in self.policies if p.skipped is None]


def plan_policies(edition: TimescaleEdition, config: PolicyConfig) -> list[Policy]:
    """The policies for this edition (pure): what to execute, or why each is skipped."""
    skipped = None
    if not edition.has_tsl_features:
        skipped = (
            f"TimescaleDB {edition.version} runs under the {edition.license!r} license, which has "
            "no compression or retention policies (the docker-compose image has them)"
        )
    out: list[Policy] = []
    for t in COMPRESSED:
        settings = (
            f"ALTER TABLE {t.table} SET (timescaledb.compress, "
            f"timescaledb.compress_segmentby = '{t.segment_by}', "
            f"timescaledb.compress_orderby = '{t.order_by} DESC')"
        )
        enabled = (
            "SELECT coalesce(bool_or(compression_enabled), false) "
            "FROM timescaledb_information.hypertables WHERE hypertable_name = %s",
            (t.table,),
        )
        out.append(Policy(t.table, "compression settings", ((settings, ()),), skipped, enabled))
        out.append(
            Policy(
                t.table,
                "compression policy",
                (
                    (
                        "SELECT add_compression_policy(%s, %s::interval, if_not_exists => true)",
                        (t.table, config.compress_after),
                    ),
                ),
                skipped,
            )
        )
        if config.raw_retention is not None:
            out.append(
                Policy(
                    t.table,
                    "retention policy",
                    (
                        (
                            "SELECT add_retention_policy(%s, %s::interval, if_not_exists => true)",
                            (t.table, config.raw_retention),
                        ),
                    ),
                    skipped,
                )
            )
    return out


async def apply_policies(
    conn: psycopg.AsyncConnection[TupleRow], config: PolicyConfig
) -> PolicyReport:
    """Apply the edition's policies (each in its own transaction); report what was done."""
    edition = await detect_edition(conn)
    policies = plan_policies(edition, config)
    for policy in policies:
        if policy.skipped is not None:
            continue
        async with conn.transaction():
            if policy.done_if is not None:
                cur = await conn.execute(*policy.done_if)
                row = await cur.fetchone()
                if row is not None and row[0]:
                    continue
            for sql, params in policy.statements:
                await conn.execute(sql, params or None)
    return PolicyReport(edition, tuple(policies))


def describe(policies: Sequence[Policy]) -> list[str]:
    """One line per policy, for logs and the CLI."""
    return [
        f"{p.table}: {p.kind} " + ("applied" if p.skipped is None else f"skipped: {p.skipped}")
        for p in policies
    ]
