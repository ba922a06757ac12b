"""Upload the dashboards to a running Grafana over its HTTP API (grafana-client): the folder
first (created when missing), then each dashboard, overwriting, datasources referred to by
uid (the same uids as provisioning's). The token is the caller's, never logged."""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol


class GrafanaApi(Protocol):
    """The part of ``grafana_client.GrafanaApi`` this uses."""

    @property
    def folder(self) -> Any: ...

    @property
    def dashboard(self) -> Any: ...


@dataclass(frozen=True)
class Pushed:
    uid: str
    version: int | None
    url: str | None


def ensure_folder(api: GrafanaApi, uid: str, title: str) -> None:
    """Create the folder ``uid`` unless it exists."""
    from grafana_client.client import GrafanaClientError

    try:
        api.folder.get_folder(uid)
    except GrafanaClientError as error:
        if error.status_code != 404:
            raise
        api.folder.create_folder(title, uid=uid)


def push(
    api: GrafanaApi, dashboards: Iterable[dict[str, Any]], folder_uid: str, folder_title: str
) -> list[Pushed]:
    """Put ``dashboards`` (Grafana JSON models) into the folder, overwriting what is there."""
    ensure_folder(api, folder_uid, folder_title)
    pushed = []
    for model in dashboards:
        body = {
            "dashboard": {**model, "id": None},
            "folderUid": folder_uid,
            "overwrite": True,
            "message": "energywatch dashboards push",
        }
        answer = api.dashboard.update_dashboard(body)
        pushed.append(Pushed(model["uid"], answer.get("version"), answer.get("url")))
    return pushed
