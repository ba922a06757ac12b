"""Writing files so that readers never see half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from stack.run_as import RunAs


def write_atomic(path: Path, text: str, *, mode: int = 0o644, owner: RunAs | None = None) -> bool:
    """Write ``text`` to ``path`` through a rename; return whether the content changed.

    The temporary file gets ``mode`` (and ``owner``) before it holds any data, so a
    secret is never readable by others, not even for a moment.
    """
    try:
        if path.read_text() == text and (path.stat().st_mode & 0o777) == mode:
            return False
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        if owner is not None and owner.is_other_user:
            os.fchown(fd, owner.uid, owner.gid)
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return True
