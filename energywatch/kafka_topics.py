"""Creates the topics EnergyWatch uses (the brokers do not auto-create topics)."""

import contextlib
import time
from collections.abc import Iterator

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError

from energywatch.settings import Settings


def topic_layout(settings: Settings) -> dict[str, int]:
    """Topic name → partitions. Readings and alerts are keyed by unit, so several workers
    share the partitions; dead letters are few and kept in one ordered partition."""
    return {
        settings.readings_topic: settings.topic_partitions,
        settings.alerts_topic: settings.topic_partitions,
        settings.dead_letter_topic: 1,
        settings.production_topic: settings.topic_partitions,
        settings.voc_topic: settings.topic_partitions,
    }


@contextlib.contextmanager
def _admin(settings: Settings) -> Iterator[KafkaAdminClient]:
    admin = KafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, client_id="energywatch-admin"
    )
    try:
        yield admin
    finally:
        admin.close()


def ensure_topics(settings: Settings) -> list[str]:
    """Create missing topics; return the names created now."""
    with _admin(settings) as admin:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(name, num_partitions=partitions, replication_factor=1)
            for name, partitions in topic_layout(settings).items()
            if name not in existing
        ]
        if missing:
            # another process may create one between list and create: fine
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(missing)
        return [t.name for t in missing]


def recreate_topics(settings: Settings, timeout: float = 30.0) -> None:
    """Delete this pipeline's topics, wait until the broker has forgotten them, create them
    empty (a demo that starts clean every run)."""
    delete_topics(settings)
    names = set(topic_layout(settings))
    deadline = time.monotonic() + timeout
    with _admin(settings) as admin:
        while names & set(admin.list_topics()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the broker did not delete {sorted(names)} in {timeout}s")
            time.sleep(0.2)
    ensure_topics(settings)


def delete_topics(settings: Settings) -> None:
    """Delete this pipeline's topics (a test's or a benchmark's, when it is done with them)."""
    with _admin(settings) as admin:
        existing = set(admin.list_topics())
        doomed = [name for name in topic_layout(settings) if name in existing]
        if doomed:
            with contextlib.suppress(UnknownTopicOrPartitionError):
                admin.delete_topics(doomed)
