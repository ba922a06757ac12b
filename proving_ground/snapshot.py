"""What a replay left behind, as plain rows, and the first difference between two of them.

A snapshot maps a part's name (``energy_rollups``, ``alert_history``, ``webhook.events``...) to
its rows, each row a tuple of strings (values as PostgreSQL prints them: numerics keep every
digit). Rows are compared as multisets: the order a table returns them in means nothing, but a
row present twice is a row doubled.

Pure: ``snapshot_reader`` fills snapshots from a database and a webhook receiver.
"""

import hashlib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

Row = tuple[str, ...]


@dataclass(frozen=True)
class Part:
    """One part of a snapshot: its column names and rows (sorted, so equal parts print alike)."""

    columns: tuple[str, ...]
    rows: tuple[Row, ...]

    @classmethod
    def of(cls, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> "Part":
        return cls(tuple(columns), tuple(sorted(tuple(_text(v) for v in row) for row in rows)))

    def digest(self) -> str:
        """A SHA-256 of the columns and rows: equal parts, equal digests."""
        sha = hashlib.sha256("\x1f".join(self.columns).encode())
        for row in self.rows:
            sha.update(b"\x1e" + "\x1f".join(row).encode())
        return sha.hexdigest()


@dataclass(frozen=True)
class Snapshot:
    parts: Mapping[str, Part]

    def summary(self) -> dict[str, dict[str, object]]:
        """Rows and digest per part: what a results file keeps of a snapshot."""
        return {
            name: {"rows": len(part.rows), "sha256": part.digest()[:16]}
            for name, part in self.parts.items()
        }

    def rows(self, name: str) -> int:
        part = self.parts.get(name)
        return len(part.rows) if part is not None else 0


@dataclass(frozen=True)
class Difference:
    """The first difference between a reference snapshot and another: in part ``part``, a row
    the reference has that the other lacks (``missing``) and/or one it has in excess
    (``extra``), or a part one of them does not have at all."""

    part: str
    columns: tuple[str, ...]
    missing: Row | None
    extra: Row | None
    missing_count: int
    extra_count: int
    note: str = ""

    def describe(self) -> str:
        if self.note:
            return f"{self.part}: {self.note}"
        words = [f"{self.part}: {self.missing_count} row(s) missing, {self.extra_count} extra"]
        if self.missing is not None and self.extra is not None:
            changed = [
                f"{c}: {_short(m)} -> {_short(e)}"
                for c, m, e in zip(self.columns, self.missing, self.extra, strict=True)
                if m != e
            ]
            key = f"{self.columns[0]}={_short(self.missing[0])}"
            words.append(f"first missing ({key}) vs first extra differ in " + "; ".join(changed))
            return ", ".join(words[:1]) + "; " + words[1]
        if self.missing is not None:
            words.append(f"first missing {_labelled(self.columns, self.missing)}")
        if self.extra is not None:
            words.append(f"first extra {_labelled(self.columns, self.extra)}")
        return "; ".join(words)

    def as_json(self) -> dict[str, object]:
        return {
            "part": self.part,
            "missing_rows": self.missing_count,
            "extra_rows": self.extra_count,
            "first_missing": dict(zip(self.columns, self.missing, strict=True))
            if self.missing is not None
            else None,
            "first_extra": dict(zip(self.columns, self.extra, strict=True))
            if self.extra is not None
            else None,
            "note": self.note,
        }


def first_difference(reference: Snapshot, other: Snapshot) -> Difference | None:
    """The first part (in the reference's order) where ``other`` differs, or None when every
    part holds the same rows the same number of times."""
    for name, expected in reference.parts.items():
        got = other.parts.get(name)
        if got is None:
            return Difference(name, expected.columns, None, None, 0, 0, "absent from this run")
        if got.columns != expected.columns:
            note = f"columns differ: {expected.columns} vs {got.columns}"
            return Difference(name, expected.columns, None, None, 0, 0, note)
        if got.rows == expected.rows:
            continue
        want, have = Counter(expected.rows), Counter(got.rows)
        missing = sorted((want - have).elements())
        extra = sorted((have - want).elements())
        return Difference(
            name,
            expected.columns,
            missing[0] if missing else None,
            extra[0] if extra else None,
            len(missing),
            len(extra),
        )
    for name in other.parts:
        if name not in reference.parts:
            return Difference(name, other.parts[name].columns, None, None, 0, 0, "not in reference")
    return None


def _text(value: object) -> str:
    return "∅" if value is None else str(value)


def _labelled(columns: Sequence[str], row: Row, limit: int = 600) -> str:
    text = ", ".join(f"{c}={v}" for c, v in zip(columns, row, strict=True))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short(value: str, limit: int = 120) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"
