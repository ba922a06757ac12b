"""``energywatch ingest <channel>``: the gateways through which enterprises send their data.

One function per command. Each builds its settings once, loads the enterprise register, serves
its Prometheus metrics on ``EW_INGEST_METRICS_PORT`` and runs its gateway through the
gateway's composition root until SIGTERM or SIGINT.
"""

import asyncio
import contextlib
import logging
import signal
from collections.abc import Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from prometheus_client import CollectorRegistry
from rich.console import Console

from energywatch.config_files import ConfigFileError
from energywatch.settings import Settings
from plans.register import Register, load_register

app = typer.Typer(no_args_is_help=True)
console = Console(stderr=True)

RegisterOption = Annotated[
    Path,
    typer.Option(
        help="The enterprise register (plans/registers/*.yaml): units, meters, credentials",
        exists=True,
        dir_okay=False,
        readable=True,
    ),
]
LogLevelOption = Annotated[str, typer.Option(help="debug, info, warning or error")]


@app.callback()
def ingest() -> None:
    """Ingest gateways: HJ 212 over TCP, HTTPS, MQTT."""


def _register(path: Path) -> Register:
    try:
        return load_register(path)
    except ConfigFileError as error:
        console.print(f"[red]{error}[/red]", highlight=False)
        raise typer.Exit(2) from error


def _utc_now() -> datetime:
    return datetime.now(UTC)


@app.command()
def mqtt(register: RegisterOption, loglevel: LogLevelOption = "info") -> None:
    """Serve IoT gateways' MQTT uploads: valid readings to Kafka, the rest to dead letters.

    Subscribes to `<prefix>/+/readings` on EW_MQTT_URL and answers each upload on
    `<prefix>/<credit code>/acks`."""
    from energywatch.metrics_endpoint import serve_metrics
    from ingest.metrics import IngestMetrics
    from ingest.mqtt_gateway import create_mqtt_gateway

    logging.basicConfig(
        level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings.load()
    enterprises = _register(register)
    registry = CollectorRegistry()
    try:
        gateway = create_mqtt_gateway(
            settings, enterprises, IngestMetrics.create(registry), clock=_utc_now
        )
    except ValueError as error:
        console.print(f"[red]{error}[/red]", highlight=False)
        raise typer.Exit(2) from error
    port = serve_metrics(settings, "ingest-mqtt", settings.ingest_metrics_port, registry)
    console.print(f"MQTT ingest metrics on http://{settings.metrics_host}:{port}/metrics")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, gateway.stop)
        await gateway.run()

    asyncio.run(main())


def _run_fast(main: Coroutine[Any, Any, None]) -> None:
    """Run a gateway on uvloop: its event loop is written in C (libuv) and roughly doubles
    what one core can serve over sockets."""
    import uvloop

    uvloop.run(main)


def _logging(loglevel: str) -> None:
    logging.basicConfig(
        level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@app.command()
def hj212(register: RegisterOption, loglevel: LogLevelOption = "info") -> None:
    """Serve VOC monitors' data loggers over HJ 212 (TCP, EW_HJ212_HOST:EW_HJ212_PORT).

    Registered monitors' minute, hourly and daily data go to Kafka, answered with 9014 once
    Kafka has them; everything refused goes to the dead-letter topic with its reason."""
    from energywatch.metrics_endpoint import serve_metrics
    from ingest.hj212_server import ConnectionLimits, serve_hj212
    from ingest.metrics import IngestMetrics

    _logging(loglevel)
    settings = Settings.load()
    enterprises = _register(register)
    registry = CollectorRegistry()
    limits = ConnectionLimits.from_settings(settings)
    port = serve_metrics(settings, "ingest-hj212", settings.ingest_metrics_port, registry)
    console.print(
        f"HJ 212 gateway on {settings.hj212_host}:{settings.hj212_port}; "
        f"metrics on http://{settings.metrics_host}:{port}/metrics"
    )

    async def main() -> None:
        task = asyncio.current_task()
        assert task is not None
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, task.cancel)
        await serve_hj212(settings, enterprises, IngestMetrics.create(registry), limits)

    with contextlib.suppress(asyncio.CancelledError):
        _run_fast(main())


@app.command()
def http(register: RegisterOption, loglevel: LogLevelOption = "info") -> None:
    """Serve the HTTPS upload API for enterprises' on-site systems (OpenAPI at /docs).

    Listens on EW_HTTP_HOST:EW_HTTP_PORT, with TLS when EW_HTTP_TLS_CERT and EW_HTTP_TLS_KEY
    are set."""
    from energywatch.metrics_endpoint import serve_metrics
    from ingest.http_server import serve_http
    from ingest.metrics import IngestMetrics

    _logging(loglevel)
    settings = Settings.load()
    enterprises = _register(register)
    registry = CollectorRegistry()
    port = serve_metrics(settings, "ingest-http", settings.ingest_metrics_port, registry)
    scheme = "https" if settings.http_tls_cert and settings.http_tls_key else "http"
    console.print(
        f"upload API on {scheme}://{settings.http_host}:{settings.http_port}/docs; "
        f"metrics on http://{settings.metrics_host}:{port}/metrics"
    )
    _run_fast(serve_http(settings, enterprises, IngestMetrics.create(registry)))
