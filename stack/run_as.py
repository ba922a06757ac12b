"""The operating-system user a service process runs as."""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunAs:
    """A user identity for child processes (PostgreSQL refuses to run as root)."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: Path

    @property
    def is_other_user(self) -> bool:
        return self.uid != os.geteuid()

    @classmethod
    def current(cls) -> RunAs:
        entry = pwd.getpwuid(os.geteuid())
        return cls.from_entry(entry)

    @classmethod
    def named(cls, name: str) -> RunAs:
        return cls.from_entry(pwd.getpwnam(name))

    @classmethod
    def from_entry(cls, entry: pwd.struct_passwd) -> RunAs:
        groups = tuple(os.getgrouplist(entry.pw_name, entry.pw_gid))
        return cls(
            name=entry.pw_name,
            uid=entry.pw_uid,
            gid=entry.pw_gid,
            groups=groups,
            home=Path(entry.pw_dir),
        )

    def chown(self, path: Path) -> None:
        """Give ``path`` to this user (a no-op when it is the current user)."""
        if self.is_other_user:
            os.chown(path, self.uid, self.gid)
