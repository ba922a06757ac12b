"""The stack's own passwords: from the settings, or generated once and kept under home.

Two accounts have one: the ``energywatch`` database role and the MQTT broker's
``energywatch-gateway`` user (the ingest gateway's login).
"""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import SecretStr

from stack.files import write_atomic
from stack.paths import StackPaths
from stack.settings import StackSettings


def postgres_password(
    settings: StackSettings, paths: StackPaths, *, create: bool
) -> SecretStr | None:
    """``EW_STACK_POSTGRES_PASSWORD`` when set; else the stored one, generated if ``create``.

    A generated password lives in ``<home>/secrets/postgres_password`` (mode 0600).
    """
    return _configured_or_stored(
        settings.postgres_password, paths.postgres_password_file, paths, create=create
    )


def mqtt_gateway_password(
    settings: StackSettings, paths: StackPaths, *, create: bool
) -> SecretStr | None:
    """``EW_STACK_MQTT_GATEWAY_PASSWORD`` when set; else the stored one, generated if ``create``.

    A generated password lives in ``<home>/secrets/mqtt_gateway_password`` (mode 0600).
    """
    return _configured_or_stored(
        settings.mqtt_gateway_password, paths.mqtt_gateway_password_file, paths, create=create
    )


def _configured_or_stored(
    configured: SecretStr | None, stored: Path, paths: StackPaths, *, create: bool
) -> SecretStr | None:
    if configured is not None:
        return configured
    if stored.is_file():
        return SecretStr(stored.read_text().strip())
    if not create:
        return None
    paths.secrets.mkdir(parents=True, exist_ok=True)
    paths.secrets.chmod(0o700)
    password = secrets.token_urlsafe(32)
    write_atomic(stored, password + "\n", mode=0o600)
    return SecretStr(password)
