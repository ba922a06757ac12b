"""``energywatch alerts <command>``: the alert services.

One function per command; each builds its settings once (``Settings.load()``), its service
through the service's composition root, serves its Prometheus metrics and runs until SIGTERM
or SIGINT.
"""

import asyncio
import logging
import signal
from typing import Annotated

import typer
from prometheus_client import CollectorRegistry
from rich.console import Console

from energywatch.config_files import ConfigFileError
from energywatch.settings import Settings

app = typer.Typer(no_args_is_help=True)
console = Console(stderr=True)

LogLevelOption = Annotated[str, typer.Option(help="debug, info, warning or error")]


@app.callback()
def alerts() -> None:
    """The alert services: evaluator, notifier, Alerts API."""


def _logging(loglevel: str) -> None:
    logging.basicConfig(
        level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )


@app.command()
def evaluate(loglevel: LogLevelOption = "info") -> None:
    """Run the alert evaluator: the rules over stored data on every dirty mark (and every
    EW_EVALUATOR_SWEEP_SECONDS), the alert lifecycle, operators' commands, and the alert
    events to the alerts topic. One leads at a time; others wait to take over."""
    from alerts.evaluator import create_evaluator
    from alerts.metrics import EvaluatorMetrics
    from energywatch.metrics_endpoint import serve_metrics

    _logging(loglevel)
    settings = Settings.load()
    registry = CollectorRegistry()
    try:
        service = create_evaluator(settings, EvaluatorMetrics.create(registry))
    except ConfigFileError as error:
        console.print(f"[red]{error}[/red]", highlight=False)
        raise typer.Exit(2) from error
    port = serve_metrics(
        settings, "energywatch-evaluator", settings.evaluator_metrics_port, registry, "evaluator"
    )
    console.print(f"evaluator metrics on http://{settings.metrics_host}:{port}/metrics")

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, service.stop)
        await service.run()

    asyncio.run(main())


def _add_api_commands() -> None:
    from energywatch import alerts_api_commands

    app.command("api")(alerts_api_commands.api)
    app.command("token-digest")(alerts_api_commands.token_digest)


_add_api_commands()
