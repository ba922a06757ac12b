"""The fault-injection suite (issue 8, part 1): the same replay, disturbed four ways, must leave
exactly what the undisturbed replay leaves.

    reference  the replay through worker, evaluator and notifier, undisturbed
    kills      the worker SIGKILLed ``kills`` times at seeded random points, restarted each time
    outages    Kafka restarted once 30% of the feed is sent; PostgreSQL stopped for
               ``pg_outage_seconds`` once 60% is sent; the feed goes on meanwhile
    rebalance  a second worker joins once 25% is sent and leaves (SIGTERM) at 70%

Each run gets a fresh database and topics on the same stack and the same records at the same
pace; its snapshot (``snapshot_reader``: every table the pipeline writes, the dead letters,
what the notifier recorded and what the webhook was told) must equal the reference's, row for
row. A run that differs names its first difference.

Outages need a stack the suite may stop (``private_stack``); kills and rebalances only touch
the suite's own processes, so they can run on any stack.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from energywatch.settings import Settings
from proving_ground.fault_plan import KillPoint, OutagePlan, RebalancePlan, kill_plan
from proving_ground.private_stack import PrivateStack
from proving_ground.replay_pipeline import Replay, ReplayRun
from proving_ground.snapshot import Difference, Snapshot, first_difference
from proving_ground.snapshot_reader import (
    IDENTITY_PARTS,
    dead_letter_copies,
    read_snapshot,
    repeated_posts,
)

SCENARIOS: Final = ("kills", "outages", "rebalance")
DEFAULT_SCENARIO: Final = Path(__file__).parent / "scenarios" / "faults.yaml"
Report = Callable[[str], None]


#: A SIGKILLed worker's successor stores again after about this long: the dead member's
#: session (6 s) expires, the group rebalances, Faust starts.
SECONDS_PER_KILL: Final = 11.0


def feed_rate(records: int, kills: int) -> float:
    """Records/s at which the feed lasts about as long as ``kills`` kills and restarts take
    (at least ten's worth), so every kill lands while there is still a feed to fall behind."""
    return round(records / (max(kills, 10) * SECONDS_PER_KILL), 1)


def lost_or_doubled(reference: Snapshot, other: Snapshot) -> bool:
    """Whether ``other`` lost or doubled an alert event, a recorded delivery or a webhook
    notification compared with ``reference`` (content aside)."""

    def identity(snapshot: Snapshot) -> Snapshot:
        return Snapshot({p: snapshot.parts[p] for p in IDENTITY_PARTS if p in snapshot.parts})

    return first_difference(identity(reference), identity(other)) is not None


@dataclass(frozen=True)
class FaultConfig:
    scenario: Path = DEFAULT_SCENARIO
    runs: tuple[str, ...] = SCENARIOS
    kills: int = 20
    seed: int = 8
    pg_outage_seconds: float = 60.0
    #: records/s the replay is fed at, the same in every run so only the faults differ;
    #: None: slow enough that the feed lasts about as long as the kills take
    rate: float | None = None
    #: replay only the first this many records of the scenario (None: all)
    records: int | None = None
    settle_timeout_seconds: float = 600.0
    keep_databases: bool = True


@dataclass
class RunResult:
    name: str
    seconds: float
    settled: bool
    settle_note: str
    snapshot: Snapshot
    details: dict[str, Any] = field(default_factory=dict)
    difference: Difference | None = None

    #: whether an alert event or a notification is missing or doubled (set when compared)
    alerts_lost_or_doubled: bool | None = None

    @property
    def passed(self) -> bool:
        return self.settled and self.difference is None

    def verdict(self) -> str:
        if not self.settled:
            return f"did not settle: {self.settle_note}"
        if self.difference is not None:
            return self.difference.describe()
        return "identical to the reference"

    def as_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "verdict": self.verdict(),
            "seconds": round(self.seconds, 1),
            "settled": self.settled,
            "first_difference": self.difference.as_json() if self.difference else None,
            "alert_events_lost_or_doubled": self.alerts_lost_or_doubled,
            "snapshot": self.snapshot.summary(),
            **self.details,
        }


@dataclass
class FaultSuite:
    """Runs the reference and the chosen disturbed replays on ``base`` (a stack's settings).
    ``stack``: the private stack to restart services of (needed for ``outages``)."""

    base: Settings
    config: FaultConfig
    workdir: Path
    report: Report
    stack: PrivateStack | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    rate: float = 0.0  # the feed's records/s, once the replay is loaded

    def run(self) -> list[RunResult]:
        """The reference first, then each disturbed run compared with it."""
        if "outages" in self.config.runs and self.stack is None:
            raise ValueError("the outages run needs a private stack it may stop")
        self.report(f"generating {self.config.scenario.name}")
        replay = Replay.load(self.config.scenario, self.config.records)
        self.rate = self.config.rate or feed_rate(len(replay.records), self.config.kills)
        reference = self._replay(replay, "reference", lambda run: {})
        results = [reference]
        actions: dict[str, Callable[[ReplayRun], dict[str, Any]]] = {
            "kills": self._kills,
            "outages": self._outages,
            "rebalance": self._rebalance,
        }
        for name in self.config.runs:
            result = self._replay(replay, name, actions[name])
            result.difference = first_difference(reference.snapshot, result.snapshot)
            result.alerts_lost_or_doubled = lost_or_doubled(reference.snapshot, result.snapshot)
            results.append(result)
        return results

    def _replay(
        self, replay: Replay, name: str, disturb: Callable[[ReplayRun], dict[str, Any]]
    ) -> RunResult:
        started = time.monotonic()
        with ReplayRun(
            self.base,
            replay,
            self.workdir,
            name,
            extra_env=self.extra_env,
            keep_database=self.config.keep_databases,
            rate=self.rate,
        ) as run:
            self.report(f"{name}: starting the worker, the evaluator and the notifier")
            run.start_pipeline()
            feeder = run.start_feed()
            details = disturb(run)
            feeder.finished.wait()
            # settling counts from the later of the feed's end and the last disturbance
            since = max(run.drain_from or 0.0, feeder.finished_at or time.monotonic())
            settled = run.settle(self.report, since, self.config.settle_timeout_seconds)
            self.report(f"{name}: reading the snapshot")
            snapshot = read_snapshot(run.settings, run.receiver)
            assert run.services is not None
            details |= {
                "settle_seconds": round(settled.seconds, 1),
                "records": len(replay.records),
                "database": run.database if self.config.keep_databases else None,
                "logs": str(run.workdir),
                "services_restarted_after_exiting": [
                    {"service": r.service, "at_seconds": r.at_seconds, "log_tail": r.exit_log}
                    for r in run.services.restarts
                ],
                "dead_letters": dead_letter_copies(run.settings),
                "webhook_posts_repeated": repeated_posts(run.receiver),
                "webhook_posts": len(run.receiver.notifications),
            }
        return RunResult(
            name, time.monotonic() - started, settled.ok, settled.why, snapshot, details
        )

    # -- the disturbances --------------------------------------------------------------------

    def _kills(self, run: ReplayRun) -> dict[str, Any]:
        """SIGKILL the worker at each point of the plan, restarting it at once each time."""
        assert run.services is not None
        assert run.feeder is not None
        plan = kill_plan(self.config.kills, self.config.seed)
        feed_started = time.monotonic()
        points = []
        for point in plan:
            incarnation = run.services.running["worker"]
            born = time.monotonic()
            state = self._wait_until_storing(run, point)
            time.sleep(point.delay_seconds)
            stored = run.readings_progress()
            incarnation.kill()
            points.append(
                {
                    "kill": point.number,
                    "delay_after_first_store_seconds": point.delay_seconds,
                    "seconds_into_replay": round(time.monotonic() - feed_started, 2),
                    "incarnation_uptime_seconds": round(time.monotonic() - born, 2),
                    "feed_sent": run.feeder.sent,
                    "readings_stored_at_kill": stored,
                    "worker_was": state,
                }
            )
            self.report(
                f"kills: {point.number}/{len(plan)} at {points[-1]['seconds_into_replay']} s "
                f"({state})"
            )
            run.services.start("worker")
        run.drain_from = time.monotonic()
        return {"seed": self.config.seed, "kills": len(points), "kill_points": points}

    def _wait_until_storing(self, run: ReplayRun, point: KillPoint, timeout: float = 180) -> str:
        """Until the fresh worker has stored something ('storing'), or until everything is
        stored and there is nothing left for it to do ('at rest')."""
        assert run.feeder is not None
        before = run.readings_progress() or 0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            now = run.readings_progress()
            if now is not None and now > before:
                return "storing"
            if run.feeder.finished.is_set():
                position = run.worker_position()
                if position is not None and position.lag == 0:
                    return "at rest"
            time.sleep(0.05)
        raise TimeoutError(
            f"kill {point.number}: the restarted worker stored nothing in {timeout:.0f} s; "
            f"read {run.workdir}/worker-*.log"
        )

    def _outages(self, run: ReplayRun) -> dict[str, Any]:
        """Restart Kafka under the feed, then stop PostgreSQL for a while; time the drains."""
        assert run.feeder is not None
        stack = self.stack
        assert stack is not None
        plan = OutagePlan(postgres_seconds=self.config.pg_outage_seconds)
        run.wait_for_feed(plan.kafka_at, self.report)
        self.report("outages: restarting Kafka")
        run.feeder.pause()  # a gateway holds its clients' data while Kafka is away
        down_at = time.monotonic()
        stack.stop("kafka")
        stack.up(self.report)
        back_at = time.monotonic()
        run.feeder.resume()
        kafka = {
            "at_feed_fraction": plan.kafka_at,
            "down_seconds": round(back_at - down_at, 1),
            **self._drain(run, back_at, "after the Kafka restart"),
        }
        run.wait_for_feed(plan.postgres_at, self.report)
        self.report(f"outages: PostgreSQL stopped for {plan.postgres_seconds:.0f} s")
        stopped_at = time.monotonic()
        stack.stop("postgres")
        while time.monotonic() - stopped_at < plan.postgres_seconds:
            assert run.services is not None
            run.services.supervise()
            left = plan.postgres_seconds - (time.monotonic() - stopped_at)
            self.report(f"outages: PostgreSQL down, {left:.0f} s left")
            time.sleep(0.5)
        stack.up(self.report)
        pg_back = time.monotonic()
        run.drain_from = pg_back
        postgres = {
            "at_feed_fraction": plan.postgres_at,
            "stopped_seconds": round(pg_back - stopped_at, 1),
            **self._drain(run, pg_back, "after PostgreSQL's return"),
        }
        return {"kafka_restart": kafka, "postgres_outage": postgres}

    def _drain(
        self, run: ReplayRun, since: float, what: str, timeout: float = 600
    ) -> dict[str, Any]:
        """Wait until the worker has committed every record that was in its topics at the
        moment the service came back: the backlog, drained. Its size and the seconds taken."""
        assert run.services is not None
        position = None
        while position is None:
            position = run.worker_position()
            if time.monotonic() - since > timeout:
                raise TimeoutError(f"Kafka does not answer {what}")
        backlog = position.lag
        target = position.end
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run.services.supervise()
            now = run.worker_position()
            if now is not None and now.committed >= target:
                return {
                    "backlog_records": backlog,
                    "drain_seconds": round(time.monotonic() - since, 1),
                }
            left = target - now.committed if now is not None else backlog
            self.report(f"outages: draining the backlog {what}: {left:,} records left")
            time.sleep(0.25)
        return {"backlog_records": backlog, "drain_seconds": None}

    def _rebalance(self, run: ReplayRun) -> dict[str, Any]:
        """A second worker joins the group, then leaves it cleanly."""
        assert run.services is not None
        plan = RebalancePlan()
        run.wait_for_feed(plan.join_at, self.report)
        joined = time.monotonic()
        self.report("rebalance: a second worker joins")
        run.services.start("worker-2")
        run.wait_for_feed(plan.leave_at, self.report)
        self.report("rebalance: the second worker leaves")
        run.services.stop("worker-2")
        run.drain_from = time.monotonic()
        return {
            "joined_at_feed_fraction": plan.join_at,
            "left_at_feed_fraction": plan.leave_at,
            "second_worker_seconds": round(time.monotonic() - joined, 1),
        }
