"""The endpoints file (``<home>/stack.env``) that the application's settings load."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, SecretStr

from stack.errors import StackError
from stack.files import write_atomic
from stack.mosquitto import GATEWAY_USER
from stack.paths import StackPaths, shown
from stack.postgres_admin import DATABASE, ROLE
from stack.settings import StackSettings


class Endpoints(BaseModel):
    """Where the running stack's services answer."""

    model_config = ConfigDict(frozen=True)

    kafka_bootstrap: str
    database_url: SecretStr
    prometheus_url: str
    prometheus_targets_dir: Path
    mqtt_url: str
    mqtt_username: str
    mqtt_password: SecretStr


_KEYS = {
    "EW_KAFKA_BOOTSTRAP": "kafka_bootstrap",
    "EW_DATABASE_URL": "database_url",
    "EW_PROMETHEUS_URL": "prometheus_url",
    "EW_PROMETHEUS_TARGETS_DIR": "prometheus_targets_dir",
    "EW_MQTT_URL": "mqtt_url",
    "EW_MQTT_USERNAME": "mqtt_username",
    "EW_MQTT_PASSWORD": "mqtt_password",
}


def endpoints_for(
    settings: StackSettings, password: SecretStr, mqtt_password: SecretStr
) -> Endpoints:
    paths = StackPaths.of(settings)
    host = settings.host
    secret = quote(password.get_secret_value(), safe="")
    return Endpoints(
        kafka_bootstrap=f"{host}:{settings.kafka_port}",
        database_url=SecretStr(
            f"postgresql://{ROLE}:{secret}@{host}:{settings.postgres_port}/{DATABASE}"
        ),
        prometheus_url=f"http://{host}:{settings.prometheus_port}",
        prometheus_targets_dir=paths.prometheus_targets,
        mqtt_url=f"mqtt://{host}:{settings.mqtt_port}",
        mqtt_username=GATEWAY_USER,
        mqtt_password=mqtt_password,
    )


def write_endpoints(settings: StackSettings, endpoints: Endpoints) -> Path:
    """Write ``stack.env`` (mode 0600: it holds the database and broker passwords)."""
    values = {
        "EW_KAFKA_BOOTSTRAP": endpoints.kafka_bootstrap,
        "EW_DATABASE_URL": endpoints.database_url.get_secret_value(),
        "EW_PROMETHEUS_URL": endpoints.prometheus_url,
        "EW_PROMETHEUS_TARGETS_DIR": str(endpoints.prometheus_targets_dir),
        "EW_MQTT_URL": endpoints.mqtt_url,
        "EW_MQTT_USERNAME": endpoints.mqtt_username,
        "EW_MQTT_PASSWORD": endpoints.mqtt_password.get_secret_value(),
    }
    path = StackPaths.of(settings).endpoints_file
    write_atomic(path, "".join(f"{k}={v}\n" for k, v in values.items()), mode=0o600)
    return path


def read_endpoints(settings: StackSettings) -> Endpoints:
    """The endpoints of the stack that the last successful ``up`` started."""
    path = StackPaths.of(settings).endpoints_file
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError as error:
        raise StackError(f"{shown(path)} does not exist: run `energywatch stack up`") from error
    fields: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and key.strip() in _KEYS:
            fields[_KEYS[key.strip()]] = value.strip()
    missing = sorted(set(_KEYS.values()) - fields.keys())
    if missing:
        raise StackError(f"{shown(path)} lacks {', '.join(missing)}: run `energywatch stack up`")
    return Endpoints.model_validate(fields)
