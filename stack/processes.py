"""Detached service processes: pid files, liveness, start and stop."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from stack.errors import StackError
from stack.paths import shown
from stack.run_as import RunAs

#: Environment variables that must never reach a service process.
_SECRET_VARIABLES = ("EW_STACK_POSTGRES_PASSWORD", "EW_STACK_MQTT_GATEWAY_PASSWORD")


def child_env(**overrides: str) -> dict[str, str]:
    """The caller's environment without stack secrets, plus ``overrides``."""
    env = {k: v for k, v in os.environ.items() if k not in _SECRET_VARIABLES}
    env.update(overrides)
    return env


@dataclass(frozen=True)
class PidFile:
    """A pid file plus the text that the process's command line must contain.

    The marker guards against pid reuse: a stale pid that now belongs to some other
    program is not mistaken for the service.
    """

    path: Path
    marker: str

    def read(self) -> int | None:
        try:
            return int(self.path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def running_pid(self) -> int | None:
        """The recorded pid when that process is alive and is the service, else None."""
        pid = self.read()
        if pid is None or not is_alive(pid):
            return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            return None
        # An empty command line means the kernel could not read it just now; the pid lives.
        return pid if not cmdline or self.marker.encode() in cmdline else None

    def write(self, pid: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(f"{pid}\n")

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def is_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (zombies of our own children are reaped, not alive)."""
    _reap(pid)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    # The state letter follows the command name, which is wrapped in parentheses.
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X")


def _reap(pid: int) -> None:
    """Collect the exit status of our own child so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def start_detached(
    command: list[str],
    *,
    pid_file: PidFile,
    log_path: Path,
    cwd: Path,
    env: dict[str, str],
    run_as: RunAs | None = None,
) -> int:
    """Start ``command`` in its own session, output appended to ``log_path``; return its pid."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        log.write(f"\n=== {stamp} energywatch stack starts: {' '.join(command)}\n".encode())
        log.flush()
        other = run_as if run_as is not None and run_as.is_other_user else None
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=cwd,
                env=env,
                start_new_session=True,
                user=other.uid if other else None,
                group=other.gid if other else None,
                extra_groups=list(other.groups) if other else None,
            )
        except OSError as error:
            raise StackError(f"cannot start {command[0]}: {error}") from error
    pid_file.write(process.pid)
    return process.pid


def stop(pid_file: PidFile, *, sig: signal.Signals, timeout_s: float) -> int | None:
    """Stop the process in ``pid_file``: ``sig``, then SIGKILL on its group after ``timeout_s``.

    Returns the pid that was stopped, or None when nothing was running.
    """
    pid = pid_file.running_pid()
    if pid is None:
        pid_file.remove()
        return None
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not is_alive(pid):
            break
        time.sleep(0.1)
    else:
        # The service was started with start_new_session, so its pid is its group id:
        # killing the group also takes down children such as PostgreSQL's backends.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        while is_alive(pid):
            time.sleep(0.05)
    pid_file.remove()
    return pid


def describe_dead(pid_file: PidFile, log_path: Path) -> str:
    """The reason to report for a service whose pid file names no live process."""
    pid = pid_file.read()
    if pid is None:
        return f"stopped (no {shown(pid_file.path)}): run `energywatch stack up`"
    return f"pid {pid} in {shown(pid_file.path)} is not running; log: {shown(log_path)}"


def log_tail(log_path: Path, lines: int = 15) -> str:
    """The last ``lines`` lines of a log, for error messages."""
    try:
        with log_path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 16_384))
            text = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])
