"""Mosquitto's password file: checking an entry, and writing one with ``mosquitto_passwd``.

Entries read ``<user>:$7$<iterations>$<salt>$<hash>``: PBKDF2-HMAC-SHA512 over the password,
salt and hash in base64 (mosquitto 2.0's default). Checking is done here, so that ``up`` only
rewrites an entry whose password really changed; writing is left to mosquitto's own tool.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from stack.commands import run_step
from stack.errors import StackError
from stack.paths import shown
from stack.processes import child_env
from stack.run_as import RunAs

_PBKDF2_SHA512 = "7"


def entry_matches(password_file: Path, user: str, password: str) -> bool:
    """Whether ``password_file`` has an entry for ``user`` that ``password`` opens."""
    stored = _entries(password_file).get(user)
    return stored is not None and hash_matches(stored, password)


def has_entry(password_file: Path, user: str) -> bool:
    return user in _entries(password_file)


def _entries(password_file: Path) -> dict[str, str]:
    try:
        lines = password_file.read_text().splitlines()
    except FileNotFoundError:
        return {}
    entries = (line.partition(":") for line in lines)
    return {name: stored for name, sep, stored in entries if sep}


def hash_matches(stored: str, password: str) -> bool:
    """Whether ``password`` gives the stored ``$7$...`` hash (other schemes: never)."""
    parts = stored.split("$")
    if len(parts) != 5 or parts[1] != _PBKDF2_SHA512 or not parts[2].isdigit():
        return False
    try:
        salt = base64.b64decode(parts[3], validate=True)
        expected = base64.b64decode(parts[4], validate=True)
    except binascii.Error:
        return False
    actual = hashlib.pbkdf2_hmac(
        "sha512", password.encode(), salt, int(parts[2]), dklen=len(expected)
    )
    return hmac.compare_digest(actual, expected)


def delete_entry(password_file: Path, user: str, *, run_as: RunAs, log_path: Path) -> None:
    """Remove ``user``'s entry with ``mosquitto_passwd -D``."""
    run_step(
        ["mosquitto_passwd", "-D", str(password_file), user],
        step=f"remove the broker account {user}",
        log_path=log_path,
        run_as=run_as,
        timeout_s=30,
    )


def write_entry(
    password_file: Path, user: str, password: str, *, run_as: RunAs, log_path: Path
) -> None:
    """Add or replace ``user``'s entry with ``mosquitto_passwd``.

    The password goes to the tool on stdin, never on its command line: ``-b`` would show it
    to every local user in ``/proc/<pid>/cmdline`` while the tool runs. The tool rewrites the
    file through ``<file>.tmp`` next to it, as ``run_as`` (the broker's user), so the broker
    can still read it.
    """
    if not user or any(c in user for c in ":\n\r"):
        raise ValueError(f"{user!r} cannot be a broker username")
    if not password or any(c in password for c in "\n\r\0"):
        raise ValueError("a broker password must be one line, not empty")
    other = run_as if run_as.is_other_user else None
    command = ["mosquitto_passwd", str(password_file), user]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("a") as log:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        log.write(f"\n=== {stamp} set the broker password of {user}: {' '.join(command)}\n")
    try:
        result = subprocess.run(
            command,
            input=f"{password}\n{password}\n".encode(),
            capture_output=True,
            env=child_env(),
            timeout=30,
            check=False,
            user=other.uid if other else None,
            group=other.gid if other else None,
            extra_groups=list(other.groups) if other else None,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise StackError(f"cannot run mosquitto_passwd for {user}: {error}") from error
    # The tool's output is its prompts and errors, never the password.
    output = (result.stdout + result.stderr).decode(errors="replace").strip()
    with log_path.open("a") as log:
        log.write(f"{output}\n=== exit {result.returncode}\n")
    if result.returncode != 0:
        raise StackError(
            f"mosquitto_passwd could not set {user}'s password in {shown(password_file)} "
            f"(exit {result.returncode}): {output}; log: {shown(log_path)}"
        )
