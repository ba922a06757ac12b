"""How far a consumer group is through its topics, as Kafka sees it: the group's committed
offsets against the partitions' end offsets (what ``kafka-consumer-groups --describe`` shows).

Measured from outside the worker, so it stays true when the worker is dead, restarting or
rebalancing. Committed offsets trail what the worker has made durable by up to its commit
interval (1 s by default).
"""

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.errors import KafkaError


@dataclass(frozen=True)
class GroupPosition:
    committed: int  # records the group has committed, over every partition
    end: int  # records in the partitions (end offsets)

    @property
    def lag(self) -> int:
        return max(0, self.end - self.committed)


class OffsetProbe:
    """Reads consumer groups' position in their topics, summed (``groups``: each group and
    the topics it consumes; a worker's readings and its Faust agents have a group each);
    reuse it for repeated reads (``close`` at end)."""

    def __init__(
        self, bootstrap: str, groups: Mapping[str, Sequence[str]], timeout_s: float = 5.0
    ) -> None:
        self._bootstrap = bootstrap
        self._groups = {group: list(topics) for group, topics in groups.items()}
        self._timeout_ms = int(timeout_s * 1000)
        self._admin: KafkaAdminClient | None = None
        self._consumer: KafkaConsumer | None = None
        self._partitions: dict[str, list[TopicPartition]] = {}

    def position(self) -> GroupPosition:
        """The groups' position now; raises a kafka-python error when the broker is away."""
        admin, consumer = self._clients()
        ends = consumer.end_offsets([tp for tps in self._partitions.values() for tp in tps])
        found = admin.list_group_offsets(self._partitions)
        done = sum(
            max(0, meta.offset)
            for committed in found.values()
            for meta in committed.values()
            if meta is not None
        )
        return GroupPosition(committed=done, end=sum(ends.values()))

    def try_position(self) -> GroupPosition | None:
        """``position``, or None when Kafka cannot answer now (it is restarting)."""
        try:
            return self.position()
        except (KafkaError, OSError):
            self.close()
            return None

    def _clients(self) -> tuple[KafkaAdminClient, KafkaConsumer]:
        if self._admin is None or self._consumer is None:
            self._admin = KafkaAdminClient(
                bootstrap_servers=self._bootstrap,
                client_id="energywatch-prove-offsets",
                request_timeout_ms=self._timeout_ms,
            )
            self._consumer = KafkaConsumer(
                bootstrap_servers=self._bootstrap,
                client_id="energywatch-prove-offsets",
                request_timeout_ms=max(self._timeout_ms, 11_000),
                enable_auto_commit=False,
            )
            consumer = self._consumer
            self._partitions = {
                group: [
                    TopicPartition(topic, p)
                    for topic in topics
                    for p in sorted(consumer.partitions_for_topic(topic) or ())
                ]
                for group, topics in self._groups.items()
            }
        return self._admin, self._consumer

    def close(self) -> None:
        for client in (self._admin, self._consumer):
            if client is not None:
                # closing a client of a vanished broker may raise anything
                with contextlib.suppress(Exception):
                    client.close()
        self._admin, self._consumer = None, None

    def __enter__(self) -> "OffsetProbe":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
