"""``energywatch dashboards``: write the dashboards' JSON, or push them to a Grafana."""

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dashboards.catalog import JSON_DIR

app = typer.Typer(no_args_is_help=True, help="Grafana dashboards as code (dashboards/).")
console = Console(stderr=True)


@app.command("build")
def build(
    out: Annotated[Path, typer.Option(help="Where to write <uid>.json")] = JSON_DIR,
) -> None:
    """Write every dashboard's JSON (what docker-compose provisions from dashboards/json)."""
    from dashboards.catalog import write_all

    for path in write_all(out):
        console.print(f"wrote {path}")


@app.command("push")
def push(
    url: Annotated[str, typer.Option(help="Grafana's URL, e.g. http://127.0.0.1:3000")],
    token_env: Annotated[
        str, typer.Option(help="The environment variable holding a service-account token")
    ] = "EW_GRAFANA_TOKEN",  # noqa: S107 - the variable's name, not a token
    timeout: Annotated[float, typer.Option(help="Seconds per request")] = 10.0,
) -> None:
    """Upload every dashboard to a running Grafana (folder EnergyWatch, overwriting), with the
    token in EW_GRAFANA_TOKEN. Datasources are referred to by uid (timescaledb, prometheus):
    create them with those uids (deploy/grafana/provisioning/datasources) first."""
    import os

    from grafana_client.api import GrafanaApi
    from grafana_client.client import GrafanaException, TokenAuth
    from niquests.exceptions import RequestException

    from dashboards.catalog import FOLDER_TITLE, FOLDER_UID, as_json, dashboards
    from dashboards.publish import push as push_all

    token = os.environ.get(token_env)
    if not token:
        console.print(
            f"[red]{token_env} is not set[/red]: create a service-account token with the "
            "Editor role in Grafana (Administration > Service accounts) and export it"
        )
        raise typer.Exit(2)
    api = GrafanaApi.from_url(url, credential=TokenAuth(token), timeout=timeout)  # type: ignore[no-untyped-call]
    models = [as_json(d) for d in dashboards()]
    try:
        with console.status(f"pushing {len(models)} dashboards to {url}"):
            pushed = push_all(api, models, FOLDER_UID, FOLDER_TITLE)
    except (GrafanaException, RequestException) as error:
        # the error names the status and Grafana's message, never the token
        console.print(
            f"[red]Grafana refused or could not be reached: {error}[/red]\n"
            f"check --url and that the token in {token_env} may edit dashboards"
        )
        raise typer.Exit(1) from error
    for item in pushed:
        console.print(f"{item.uid}: version {item.version} {item.url or ''}")
