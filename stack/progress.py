"""How long steps tell the caller what they are doing."""

from __future__ import annotations

from collections.abc import Callable

#: Called with a short, human-readable description of the step that starts now.
Progress = Callable[[str], None]


def silent(_message: str) -> None:
    """A progress callback that says nothing."""
