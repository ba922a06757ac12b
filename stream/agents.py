"""What every batch agent of the worker shares: raw records from Faust events, dead letters
sent and acknowledged, the take-handle-ack loop, and closing a sink on shutdown.

Each agent (VOC samples, production reports; readings are a batch consumer of their own,
``stream.readings_consumer``) supplies only its
``handle(events)``: make the batch durable. The loop acknowledges the events after it returns,
so Faust commits offsets only past what is durable.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import faust
from prometheus_client import Counter

from contracts.dead_letters import DeadLetter, encode_dead_letter
from energywatch.settings import Settings
from stream.batch import RawRecord
from stream.sink import TimescaleSink

log = logging.getLogger(__name__)


def raw_records(events: Sequence[Any]) -> list[RawRecord]:
    """The Faust events' records as the pure cores take them."""
    return [
        RawRecord(e.message.value, e.message.topic, e.message.partition, e.message.offset)
        for e in events
    ]


async def send_all(topic: faust.TopicT, messages: Sequence[tuple[bytes | None, bytes]]) -> None:
    """Send every (key, value) and wait until the broker has acknowledged each."""
    pending = [await topic.send(key=key, value=value) for key, value in messages]
    await asyncio.gather(*pending)


async def send_dead_letters(
    topic: faust.TopicT, letters: Sequence[DeadLetter], counted_by: Counter
) -> None:
    """Dead letters to their topic, acknowledged; counted by kind and logged."""
    await send_all(topic, [(None, encode_dead_letter(d)) for d in letters])
    for letter in letters:
        counted_by.labels(kind=letter.kind).inc()
        log.warning(
            "dead-lettered %s[%s]@%s: %s",
            letter.source_topic,
            letter.source_partition,
            letter.source_offset,
            letter.reason,
        )


def add_batch_agent(
    app: faust.App,
    topic: faust.TopicT,
    name: str,
    settings: Settings,
    handle: Callable[[Sequence[Any]], Awaitable[None]],
) -> None:
    """An agent taking batches without auto-ack, acknowledging them once ``handle`` returns."""

    async def agent(stream: Any) -> None:
        async for events in stream.noack_take(
            settings.worker_batch_size, within=settings.worker_batch_seconds
        ):
            await handle(events)
            for event in events:
                await stream.ack(event)

    app.agent(topic, name=name)(agent)


def close_on_shutdown(app: faust.App, sink: TimescaleSink) -> None:
    async def close_sink(app: faust.App, **kwargs: Any) -> None:
        await sink.close()

    app.on_before_shutdown.connect(close_sink)  # type: ignore[arg-type]
