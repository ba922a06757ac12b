"""A process's resident memory, from Linux's ``/proc/<pid>/status`` (no extra library)."""

from pathlib import Path


def parse_rss_kib(status: str) -> int:
    """``VmRSS`` from the text of ``/proc/<pid>/status``, in KiB.

    Raises ValueError when the line is missing (a zombie has none)."""
    for line in status.splitlines():
        key, _, value = line.partition(":")
        if key == "VmRSS":
            number, _, unit = value.strip().partition(" ")
            if unit.strip() != "kB":
                raise ValueError(f"VmRSS in unexpected unit {unit!r}")
            return int(number)
    raise ValueError("no VmRSS line: the process has exited or is a zombie")


def rss_mib(pid: int) -> float | None:
    """The resident memory of ``pid`` in MiB, or None when it is gone."""
    try:
        return parse_rss_kib(Path(f"/proc/{pid}/status").read_text()) / 1024
    except (OSError, ValueError):
        return None
