"""One ``up`` or ``down`` at a time per home folder."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from stack.progress import Progress


@contextmanager
def exclusive(lock_file: Path, progress: Progress) -> Iterator[None]:
    """Hold an exclusive lock on ``lock_file``, waiting (and saying so) while another holds it."""
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            progress(f"waiting for another `energywatch stack` command ({lock_file})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
