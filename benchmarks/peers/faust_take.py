"""The Faust ceiling: a bare faust-streaming agent that takes batches and acknowledges every
event, doing nothing else. It is configured as the readings worker is (``stream.app``: raw
serializers, no leader topic, the same batch size, batch time and commit interval), so the
gap between it and the worker is the worker's own work, and the gap between it and a raw
consumer is what Faust costs per event.

Run as a child process of the benchmark: ``python -m benchmarks.peers.faust_take``, with the
``EW_*`` environment (``EW_READINGS_TOPIC``; ``EW_WORKER_APP_ID`` as the app id and consumer
group) and ``EW_BENCH_PROGRESS_FILE``: after each batch, the number of events acknowledged so
far is written there (the benchmark's view of its progress, as stored rows are the others').
"""

import os
from pathlib import Path
from typing import Any

import faust

from energywatch.settings import Settings


def create_app(settings: Settings, progress: Path) -> faust.App:
    settings.worker_data_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        settings.worker_app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        datadir=str(settings.worker_data_dir / settings.worker_app_id),
        key_serializer="raw",
        value_serializer="raw",
        web_enabled=False,
        topic_disable_leader=True,
        topic_allow_declare=False,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.worker_commit_interval_seconds,
        stream_wait_empty=True,
    )
    topic = app.topic(settings.readings_topic)
    scratch = progress.with_suffix(".tmp")

    async def take(stream: Any) -> None:
        taken = 0
        async for events in stream.noack_take(
            settings.worker_batch_size, within=settings.worker_batch_seconds
        ):
            for event in events:
                await stream.ack(event)
            taken += len(events)
            scratch.write_text(str(taken))
            scratch.replace(progress)  # atomic: the benchmark never reads half a number

    app.agent(topic, name="take")(take)
    return app


def main() -> None:
    settings = Settings.load()
    progress = Path(os.environ["EW_BENCH_PROGRESS_FILE"])
    faust.Worker(create_app(settings, progress), loglevel="warning").execute_from_commandline()


if __name__ == "__main__":
    main()
