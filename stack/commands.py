"""Running one install step to completion, its output kept in a log."""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from stack.errors import StackError
from stack.paths import shown
from stack.processes import child_env
from stack.run_as import RunAs


def run_step(
    command: list[str],
    *,
    step: str,
    log_path: Path,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    run_as: RunAs | None = None,
    timeout_s: float = 1800,
) -> str:
    """Run ``command``, append its output to ``log_path`` and return it.

    Raises StackError naming the step, its last output lines and the log to read.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    other = run_as if run_as is not None and run_as.is_other_user else None
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    with log_path.open("a") as log:
        log.write(f"\n=== {stamp} {step}: {' '.join(command)}\n")
    started = time.monotonic()
    try:
        result = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env if env is not None else child_env(),
            timeout=timeout_s,
            check=False,
            user=other.uid if other else None,
            group=other.gid if other else None,
            extra_groups=list(other.groups) if other else None,
        )
        output = result.stdout.decode(errors="replace")
        returncode = result.returncode
    except subprocess.TimeoutExpired as error:
        output = (error.output or b"").decode(errors="replace")
        returncode = None
    except OSError as error:
        raise StackError(f"{step} failed: cannot run {command[0]}: {error}") from error
    with log_path.open("a") as log:
        log.write(output)
        log.write(f"=== exit {returncode} after {time.monotonic() - started:.1f}s\n")
    if returncode != 0:
        tail = "\n".join(output.splitlines()[-15:])
        why = f"timed out after {timeout_s:.0f}s" if returncode is None else f"exit {returncode}"
        raise StackError(f"{step} failed ({why}); full log: {shown(log_path)}\n{tail}")
    return output
