"""Enterprise accounts on the local MQTT broker.

An enterprise's on-site system logs in with its unified social credit code as the username;
the broker's ACL then lets it write only ``<prefix>/<its code>/readings`` and read only
``<prefix>/<its code>/acks``. Tests and the CLI add accounts here; the passwords themselves
are kept by the broker as PBKDF2 hashes, nowhere else.
"""

from __future__ import annotations

import re

from stack.apt import Apt
from stack.mosquitto import GATEWAY_USER, Mosquitto
from stack.paths import StackPaths
from stack.progress import silent
from stack.settings import StackSettings

# GB 32100-2015's alphabet; the check character is the register's business, not the broker's.
_CREDIT_CODE = re.compile(r"^[0-9A-HJ-NP-RTUW-Y]{18}$")


def set_enterprise_password(settings: StackSettings, code: str, password: str) -> bool:
    """Let enterprise ``code`` log in to the local broker with ``password``.

    Adds or replaces the account with ``mosquitto_passwd``; a running broker then reloads
    (SIGHUP) and this returns once it accepts the new login. Returns whether anything changed.
    Raises ValueError for a username that is not a credit code or a multi-line password, and
    StackError when the broker is not installed or does not take the new password.
    """
    return _broker(settings, code).set_account(code, password)


def remove_enterprise_account(settings: StackSettings, code: str) -> bool:
    """Stop enterprise ``code`` from logging in again; return whether it had an account."""
    return _broker(settings, code).remove_account(code)


def _broker(settings: StackSettings, code: str) -> Mosquitto:
    if code == GATEWAY_USER or not _CREDIT_CODE.match(code):
        raise ValueError(f"{code!r} is not a unified social credit code (18 characters)")
    paths = StackPaths.of(settings)
    return Mosquitto(settings, paths, Apt(paths.log("install"), silent))
