"""The ``energywatch`` database role's password: from the settings, or generated once."""

from __future__ import annotations

import secrets

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
    if settings.postgres_password is not None:
        return settings.postgres_password
    stored = paths.postgres_password_file
    if stored.is_file():
        return SecretStr(stored.read_text().strip())
    if not create:
        return None
    paths.secrets.mkdir(parents=True, exist_ok=True)
    paths.secrets.chmod(0o700)
    password = secrets.token_urlsafe(32)
    write_atomic(stored, password + "\n", mode=0o600)
    return SecretStr(password)
