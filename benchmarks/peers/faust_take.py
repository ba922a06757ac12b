"""The Faust ceiling: a bare faust-streaming agent that takes batches and acknowledges every
event, doing nothing else. It is configured as the readings worker is (``stream.app.faust_app``,
and the same batch size and batch time), so the
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
from stream.app import faust_app


def create_app(settings: Settings, progress: Path) -> faust.App:
    app = faust_app(settings, settings.worker_app_id)
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
