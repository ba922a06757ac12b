"""``energywatch stack up|down|status``."""

from __future__ import annotations

import logging
import time
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from stack.errors import StackError
from stack.lifecycle import down as stack_down
from stack.lifecycle import status as stack_status
from stack.lifecycle import up as stack_up
from stack.service_status import ServiceStatus
from stack.settings import StackSettings

app = typer.Typer(
    help="The local services (Kafka, PostgreSQL + TimescaleDB, Prometheus, Mosquitto), no Docker.",
    no_args_is_help=True,
)
console = Console()
errors = Console(stderr=True)


def _quiet_client_logs() -> None:
    # kafka-python logs every refused connection; the table says it better.
    logging.getLogger("kafka").setLevel(logging.CRITICAL)


def _table(statuses: list[ServiceStatus]) -> Table:
    table = Table(title="energywatch stack")
    table.add_column("service", style="bold")
    table.add_column("health")
    table.add_column("endpoint", overflow="fold")
    table.add_column("detail", overflow="fold")
    for item in statuses:
        health = "[green]healthy[/]" if item.healthy else "[red]unhealthy[/]"
        table.add_row(item.name, health, item.endpoint, item.detail)
    return table


@app.command()
def up() -> None:
    """Install what is missing (first run: downloads and a build), then start everything."""
    _quiet_client_logs()
    settings = StackSettings()
    started = time.monotonic()
    try:
        with console.status("energywatch stack up") as spinner:
            statuses = stack_up(settings, progress=lambda step: spinner.update(step))
    except StackError as error:
        errors.print(f"[red]stack up failed:[/] {error}", markup=True, highlight=False)
        raise typer.Exit(1) from error
    console.print(_table(statuses))
    console.print(
        f"up in {time.monotonic() - started:.1f}s; endpoints in {settings.home}/stack.env"
    )


@app.command()
def down(
    services: Annotated[
        list[str] | None, typer.Argument(help="Services to stop (default: all).")
    ] = None,
) -> None:
    """Stop the stack's services (their data stays under the home folder)."""
    _quiet_client_logs()
    try:
        statuses = stack_down(StackSettings(), only=services or ())
    except StackError as error:
        errors.print(f"[red]stack down failed:[/] {error}", highlight=False)
        raise typer.Exit(1) from error
    console.print(_table(statuses))


@app.command()
def status() -> None:
    """Show each service's health; exit code 1 when any is unhealthy."""
    _quiet_client_logs()
    statuses = stack_status(StackSettings())
    console.print(_table(statuses))
    if not all(item.healthy for item in statuses):
        raise typer.Exit(1)
