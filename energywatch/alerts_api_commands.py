"""``energywatch alerts api`` and ``energywatch alerts token-digest``: the Alerts API and its
tokens.

Functions only; ``energywatch/alerts_commands.py`` registers them on the ``alerts`` group.
"""

import asyncio
import logging
from pathlib import Path
from typing import Annotated

import typer
import yaml
from prometheus_client import CollectorRegistry
from rich.console import Console

from alerts.access import (
    AccessConfig,
    AdminAccess,
    SupervisorAccess,
    load_access,
    new_token,
    parse_access,
)
from energywatch.config_files import ConfigFileError
from energywatch.settings import Settings
from plans.register import Register, load_register

console = Console(stderr=True)


def _load(settings: Settings) -> tuple[Register, AccessConfig]:
    """The register (enterprise tokens) and access file (supervisors', operators') named by
    the settings; either may be unset, but not both."""
    if settings.register_path is None and settings.access_path is None:
        console.print(
            "[red]no tokens to accept: set EW_REGISTER_PATH (enterprises) and/or "
            "EW_ACCESS_PATH (supervisors and operators)[/red]"
        )
        raise typer.Exit(2)
    try:
        register = (
            load_register(settings.register_path)
            if settings.register_path is not None
            else Register(name="none", enterprises=())
        )
        access = (
            load_access(settings.access_path)
            if settings.access_path is not None
            else AccessConfig()
        )
    except ConfigFileError as error:
        console.print(f"[red]{error}[/red]", highlight=False)
        raise typer.Exit(2) from error
    return register, access


def api(
    loglevel: Annotated[str, typer.Option(help="debug, info, warning or error")] = "info",
) -> None:
    """Serve the Alerts API (OpenAPI at /docs) on EW_ALERTS_API_HOST:EW_ALERTS_API_PORT.

    Enterprises authenticate with their upload token (EW_REGISTER_PATH), supervisors and
    operators with tokens from the access file (EW_ACCESS_PATH). Metrics on
    EW_ALERTS_API_METRICS_PORT."""
    import uvicorn

    from alerts.api import create_app
    from energywatch.metrics_endpoint import serve_metrics

    logging.basicConfig(
        level=loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = Settings.load()
    register, access = _load(settings)
    registry = CollectorRegistry()
    app = create_app(settings, register, access, registry=registry)
    port = serve_metrics(settings, "alerts-api", settings.alerts_api_metrics_port, registry)
    console.print(
        f"Alerts API on http://{settings.alerts_api_host}:{settings.alerts_api_port}/docs "
        f"({len(register.enterprises)} enterprises, {len(access.principals)} supervisors and "
        f"operators); metrics on http://{settings.metrics_host}:{port}/metrics"
    )
    config = uvicorn.Config(
        app,
        host=settings.alerts_api_host,
        port=settings.alerts_api_port,
        log_level="warning",
        access_log=False,  # request lines are metrics' business; headers never reach a log
        server_header=False,
    )
    asyncio.run(uvicorn.Server(config).serve())


def token_digest(
    name: Annotated[str, typer.Argument(help="The principal's name: lower case, digits, - and _")],
    kind: Annotated[str, typer.Option(help="supervisor or admin")] = "supervisor",
    region: Annotated[
        str | None, typer.Option(help="A supervisor's division code, e.g. 140800")
    ] = None,
    description: Annotated[str, typer.Option(help="Who holds it")] = "",
    out: Annotated[
        Path | None,
        typer.Option(help="Append the entry to this access file (default: print it)"),
    ] = None,
) -> None:
    """Make a new Alerts API token for a supervisor or operator, and its access-file entry.

    The token is shown once, here; only its salted digest goes into the access file."""
    token, salt, digest = new_token(name)
    fields = {"name": name, "description": description, "token_salt": salt, "token_sha256": digest}
    try:
        if kind == "supervisor" and region is not None:
            entry: SupervisorAccess | AdminAccess = SupervisorAccess(region_code=region, **fields)
        elif kind == "admin" and region is None:
            entry = AdminAccess(**fields)
        else:
            raise ValueError("--kind is supervisor (with --region) or admin (without --region)")
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        console.print(f"[red]{error}[/red]", highlight=False)
        raise typer.Exit(2) from error
    data = entry.model_dump(mode="json")
    data = {"kind": data.pop("kind"), **data}
    text = yaml.safe_dump([data], allow_unicode=True, sort_keys=False)
    snippet = "".join(f"  {line}\n" for line in text.splitlines())
    if out is None:
        typer.echo(snippet, nl=False)
    else:
        before = out.read_text(encoding="utf-8") if out.exists() else "version: 1\nprincipals:\n"
        after = before + ("" if before.endswith("\n") else "\n") + snippet
        try:
            parse_access(after, str(out))
        except ConfigFileError as error:
            console.print(
                f"[red]{out} left as it was: with the new entry appended, {error}[/red]",
                highlight=False,
            )
            raise typer.Exit(2) from error
        out.write_text(after, encoding="utf-8")
        console.print(f"{out}: added {kind} {name}")
    console.print(
        f"token for {name} (give it to its holder now; it is not stored anywhere):\n{token}",
        highlight=False,
        soft_wrap=True,
    )
