"""The worker's consumer-lag gauge: a thin adapter that reads offsets from Faust and Kafka and
sets ``energywatch_stream_consumer_lag_records`` from ``stream.consumer_lag.partition_lags``.

Every ``interval`` seconds, for the partitions assigned to this process:

- end offsets: Faust's ``consumer.highwaters`` (a ListOffsets request, so a partition the
  consumer paused while its buffer is full still shows how far behind it is);
- acknowledged: offsets of records the batch agents acknowledged, seen by a Faust sensor
  (``on_message_out``): the agents acknowledge a batch once it is durable, before Faust
  commits it;
- committed: the group's offsets in Kafka (an admin client's OffsetFetch), for partitions
  this process has not acknowledged anything in yet, such as one whose batch keeps failing;
- log starts: for partitions nobody has committed in.

Partitions a rebalance took away lose their series: the consumer that owns them reports them.
"""

import asyncio
import logging
from collections.abc import Mapping, Set
from typing import Any

import faust
from aiokafka import TopicPartition as KafkaTopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faust.exceptions import ConsumerNotStarted
from faust.sensors import Sensor
from faust.types import TP, Message
from prometheus_client import Gauge

from stream.consumer_lag import AcknowledgedOffsets, TopicPartition, partition_lags

log = logging.getLogger(__name__)

#: how often the gauge is refreshed; Prometheus scrapes every 5 s (local) or 15 s (compose)
LAG_REFRESH_SECONDS = 2.0
#: a refresh that takes longer than this is abandoned (the broker is unwell); the next retries
_REQUEST_TIMEOUT_SECONDS = 10.0


class _AcknowledgementSensor(Sensor):
    """Tells ``offsets`` about every record a stream acknowledged (all its streams done)."""

    def __init__(self, offsets: AcknowledgedOffsets, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._offsets = offsets

    def on_message_out(self, tp: TP, offset: int, message: Message) -> None:
        self._offsets.acknowledge(tp, offset)


class ConsumerLagMonitor:
    """Keeps the lag gauge of one Faust app's consumer group up to date."""

    def __init__(self, app: faust.App, gauge: Gauge, bootstrap_servers: str) -> None:
        self._app = app
        self._gauge = gauge
        self._group = str(app.conf.id)  # Faust's consumer group is the app id
        self._bootstrap = bootstrap_servers
        self._acknowledged = AcknowledgedOffsets()
        self._admin: AIOKafkaAdminClient | None = None
        self._reported: set[TopicPartition] = set()
        self._failing = False

    def install(self, interval: float = LAG_REFRESH_SECONDS) -> None:
        """Watch acknowledgements, refresh every ``interval`` seconds, close on shutdown."""
        self._app.sensors.add(_AcknowledgementSensor(self._acknowledged))

        async def refresh_lag() -> None:
            await self.refresh_safely()

        async def close_admin(app: faust.App, **kwargs: Any) -> None:
            await self.close()

        self._app.timer(interval, name="energywatch-consumer-lag")(refresh_lag)
        self._app.on_before_shutdown.connect(close_admin)  # type: ignore[arg-type]

    async def refresh_safely(self) -> None:
        """``refresh``, logging (once per outage) instead of raising: a lag probe that cannot
        reach the broker must not stop the worker."""
        try:
            await asyncio.wait_for(self.refresh(), _REQUEST_TIMEOUT_SECONDS)
        except ConsumerNotStarted:
            return
        except Exception as exc:  # any failure: try again next time
            if not self._failing:
                log.warning("consumer lag not refreshed (%s); retrying every interval", exc)
            self._failing = True
            await self.close()  # a fresh admin client next time
            return
        self._failing = False

    async def refresh(self) -> dict[TopicPartition, int]:
        """Read the offsets, set the gauge; return the lags set."""
        consumer = self._app.consumer
        assigned: Set[TP] = consumer.assignment()
        self._acknowledged.keep_only(assigned)
        lags: dict[TopicPartition, int] = {}
        if assigned:
            ends = _plain(await consumer.highwaters(*assigned))
            acknowledged = self._acknowledged.offsets
            committed = await self._committed([tp for tp in assigned if tp not in acknowledged])
            unstarted = [tp for tp in assigned if tp not in acknowledged and tp not in committed]
            starts = _plain(await consumer.earliest_offsets(*unstarted)) if unstarted else {}
            lags = partition_lags(_plain_set(assigned), ends, acknowledged, committed, starts)
        for topic, partition in self._reported - lags.keys():
            self._gauge.remove(self._group, topic, str(partition))
        for (topic, partition), lag in lags.items():
            self._gauge.labels(self._group, topic, str(partition)).set(lag)
        self._reported = set(lags)
        return lags

    async def _committed(self, partitions: list[TP]) -> dict[TopicPartition, int]:
        """The group's committed offsets for ``partitions`` (those it has one for)."""
        if not partitions:
            return {}
        if self._admin is None:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self._bootstrap, client_id=f"{self._group}-lag"
            )
            await admin.start()
            self._admin = admin
        found = await self._admin.list_consumer_group_offsets(
            self._group, partitions=[KafkaTopicPartition(t, p) for t, p in partitions]
        )
        return {(tp.topic, tp.partition): m.offset for tp, m in found.items() if m.offset >= 0}

    async def close(self) -> None:
        """Close the admin client (a later refresh opens a new one)."""
        admin, self._admin = self._admin, None
        if admin is not None:
            await admin.close()


def _plain(offsets: Mapping[TP, int]) -> dict[TopicPartition, int | None]:
    return {(tp.topic, tp.partition): offset for tp, offset in offsets.items()}


def _plain_set(partitions: Set[TP]) -> list[TopicPartition]:
    return [(tp.topic, tp.partition) for tp in partitions]
