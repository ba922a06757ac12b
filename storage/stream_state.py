"""The stream's own state, kept in the database with the rows it produced.

``lock_partitions`` loads (creating when missing) and row-locks the progress of the batch's
partitions for the rest of the transaction: a worker that still believes it owns a partition
after a rebalance waits for the new owner's transaction and then finds its records already
done. Counter meters' states are loaded and saved per meter.
"""

import json
from collections.abc import Iterable, Mapping
from typing import Any

import psycopg
from psycopg.rows import TupleRow
from psycopg.types.json import Jsonb

from stream.accounting import PartitionState


async def lock_partitions(
    cur: psycopg.AsyncCursor[TupleRow], consumer: str, topic: str, partitions: Iterable[int]
) -> dict[int, PartitionState]:
    wanted = sorted(set(partitions))
    if not wanted:
        return {}
    await cur.execute(
        "INSERT INTO stream_progress (consumer, topic, partition, next_offset) "
        "SELECT %s, %s, p, 0 FROM unnest(%s::integer[]) AS p ON CONFLICT DO NOTHING",
        (consumer, topic, wanted),
    )
    await cur.execute(
        "SELECT partition, next_offset, max_event_end, too_late FROM stream_progress "
        "WHERE consumer = %s AND topic = %s AND partition = ANY(%s) "
        "ORDER BY partition FOR UPDATE",
        (consumer, topic, wanted),
    )
    return {
        int(p): PartitionState(int(offset), end, int(late))
        for p, offset, end, late in await cur.fetchall()
    }


async def save_partitions(
    cur: psycopg.AsyncCursor[TupleRow],
    consumer: str,
    topic: str,
    states: Mapping[int, PartitionState],
    grace_seconds: float,
) -> None:
    await cur.executemany(
        "UPDATE stream_progress SET next_offset = %s, max_event_end = %s, "
        "watermark = %s::timestamptz - make_interval(secs => %s), too_late = %s, "
        "updated_at = now() WHERE consumer = %s AND topic = %s AND partition = %s",
        [
            (
                s.next_offset,
                s.max_event_end,
                s.max_event_end,
                grace_seconds,
                s.too_late,
                consumer,
                topic,
                p,
            )
            for p, s in sorted(states.items())
        ],
    )


async def load_counter_states(
    cur: psycopg.AsyncCursor[TupleRow], meter_ids: Iterable[str]
) -> dict[str, dict[str, Any]]:
    wanted = sorted(set(meter_ids))
    if not wanted:
        return {}
    await cur.execute(
        "SELECT meter_id, state FROM meter_counter_state WHERE meter_id = ANY(%s)", (wanted,)
    )
    return {
        str(m): state if isinstance(state, dict) else json.loads(state)
        for m, state in await cur.fetchall()
    }


async def save_counter_states(
    cur: psycopg.AsyncCursor[TupleRow], states: Mapping[str, dict[str, Any]]
) -> None:
    if not states:
        return
    # one statement for the batch (not one per meter): arrays of ids and states, in id order
    # so that workers sharing meters would lock them in the same order. Sent in binary: the
    # text form of a jsonb[] quotes every element with a regular expression in Python, which
    # took a fifth of a readings batch's time in the worker.
    meters = sorted(states)
    await cur.execute(
        "INSERT INTO meter_counter_state (meter_id, state) "
        "SELECT * FROM unnest(%b::text[], %b::jsonb[]) "
        "ON CONFLICT (meter_id) DO UPDATE SET state = excluded.state, updated_at = now()",
        (meters, [Jsonb(states[m]) for m in meters]),
    )


def records_made_durable(
    conn: psycopg.Connection[TupleRow], topic: str, consumer: str | None = None
) -> int:
    """How many of ``topic``'s records the workers (``consumer``'s, if given) have made
    durable: their partitions' next offsets, summed (offsets start at 0). 0 before a worker
    has migrated the database. For benchmarks, suites and tests that wait for a worker."""
    try:
        row = conn.execute(
            "SELECT coalesce(sum(next_offset), 0) FROM stream_progress "
            "WHERE topic = %s AND (%s::text IS NULL OR consumer = %s)",
            (topic, consumer, consumer),
        ).fetchone()
    except psycopg.errors.UndefinedTable:
        return 0
    return int(row[0]) if row else 0
