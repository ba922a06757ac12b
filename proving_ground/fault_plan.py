"""When the fault suite strikes: seeded, so a run can be repeated exactly, and written down.

Kills: the worker is restarted at once after each SIGKILL (as a supervisor would), and each
incarnation is killed ``delay`` seconds after it has first stored something: a new worker spends
its first seconds joining the group (the dead member's session must expire first), so a kill
timed from its start would mostly hit an idle process. Once it stores, it is working through
the backlog that piled up while it was down, so a delay of up to a second or two lands inside
a batch: between reading, the transaction, the alert outbox and the acknowledgement.

Outages and the second worker are placed at fractions of the feed (records sent / all).

Pure: ``faults`` carries the plans out.
"""

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class KillPoint:
    number: int  # 1-based
    delay_seconds: float  # after the incarnation's first stored record


def kill_plan(kills: int, seed: int, max_delay_seconds: float = 1.5) -> list[KillPoint]:
    """``kills`` kill points, each ``delay`` drawn uniformly from [0, max_delay) with ``seed``."""
    if kills < 0:
        raise ValueError("kills must be zero or more")
    rng = random.Random(seed)  # noqa: S311 (a repeatable plan, not a secret)
    return [KillPoint(n, round(rng.uniform(0, max_delay_seconds), 3)) for n in range(1, kills + 1)]


@dataclass(frozen=True)
class OutagePlan:
    """The infrastructure faults of one run: Kafka restarted once ``kafka_at`` of the feed is
    sent; PostgreSQL stopped for ``postgres_seconds`` once ``postgres_at`` of it is sent."""

    kafka_at: float = 0.3
    postgres_at: float = 0.6
    postgres_seconds: float = 60.0

    def __post_init__(self) -> None:
        if not 0 < self.kafka_at < self.postgres_at < 1:
            raise ValueError("need 0 < kafka_at < postgres_at < 1: Kafka first, then PostgreSQL")
        if self.postgres_seconds < 0:
            raise ValueError("an outage lasts zero seconds or more")


@dataclass(frozen=True)
class RebalancePlan:
    """A second worker joins once ``join_at`` of the feed is sent and leaves (SIGTERM, a clean
    leave) once ``leave_at`` of it is sent."""

    join_at: float = 0.25
    leave_at: float = 0.7

    def __post_init__(self) -> None:
        if not 0 < self.join_at < self.leave_at < 1:
            raise ValueError("need 0 < join_at < leave_at < 1")
