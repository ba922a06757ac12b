"""The alert lifecycle (pure): conditions in, lifecycle events out.

Rules (``alerts.rules``) say what holds now; the lifecycle remembers what was said before:

* **one alert per (rule, subject)**: pending → firing → resolved. A met condition starts a
  pending alert, which fires once it has held for the rule's ``pending_for`` (event time);
  a condition not met while pending drops it silently.
* **hysteresis**: a firing alert resolves only when its value is clear of the line by a
  margin (``margin_absolute + margin_ratio × |threshold|``), so a value hovering at the line
  fires once and stays firing. A condition with no line at all resolves at once.
* **escalation**: severity only rises while an alert lives (notice → warning → critical,
  one ``escalated`` event per step); falling back is not news, resolving is.
* **repeats**: a firing alert still observed is repeated every ``repeat_every`` (wall time),
  unless acknowledged (until the acknowledgement expires or the alert escalates), silenced,
  or observed on replayed data. An alert no receiver has heard of yet (it fired under a
  silence or from a replay) is repeated as soon as a live, unsilenced observation comes.
* **silences** (wall time: operators mute notifications now) and **maintenance windows**
  (event time: data from a device under maintenance says nothing, whenever it arrives) match
  rule, subject and enterprise with shell-style patterns; events they cover are still emitted,
  for the record, with ``deliver=False`` and ``suppressed_by`` naming them.
* **stale verdicts**: a verdict dated before the latest one applied to the same rule and
  subject is ignored, even after its alert resolved (data replayed, a past period re-judged),
  so old news never reopens an alert; a late correction that changes an old period's verdict
  does not either.
* **replays**: a condition flagged ``replay`` or dated more than ``replay_lag`` behind wall
  time gives events marked ``replay=True``, not delivered unless ``send_replays``.
* **resolved**: every fired alert gets one; it is delivered exactly when something about the
  alert was (a receiver told of an alert is told it is over, even under a silence).

Event ids are digests of the alert id (rule, subject, when it started), the kind and its
ordinal, so the same inputs give the same ids and a replayed stream de-duplicates downstream.
State is explicit: ``snapshot()`` returns plain JSON-able data and ``AlertLifecycle.restore``
continues exactly where it stopped. No clock is read: every call takes ``now`` (UTC-aware).
"""

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import Enum, StrEnum
from fnmatch import fnmatchcase
from typing import Any, Final, TypeVar, get_args, get_type_hints

from alerts.rules.condition import Condition, Severity, highest

SNAPSHOT_VERSION: Final = 1
_T = TypeVar("_T")


class EventKind(StrEnum):
    FIRED = "fired"
    ESCALATED = "escalated"
    REPEATED = "repeated"
    RESOLVED = "resolved"
    ACKNOWLEDGED = "acknowledged"
    SILENCED = "silenced"


class AlertStatus(StrEnum):
    PENDING = "pending"
    FIRING = "firing"


class SilenceKind(StrEnum):
    SILENCE = "silence"  # matched against wall time
    MAINTENANCE = "maintenance"  # matched against the event time of the data


@dataclass(frozen=True)
class RulePolicy:
    """How one rule's alerts live. Durations of ``pending_for`` are event time; repeats
    and the replay lag compare wall time with event time."""

    pending_for: timedelta = timedelta(0)
    margin_ratio: float = 0.05
    margin_absolute: float = 0.0
    repeat_every: timedelta | None = timedelta(hours=4)
    #: Data this far behind wall time is a replay (rules over monthly data want more).
    replay_lag: timedelta = timedelta(hours=6)

    def __post_init__(self) -> None:
        if self.pending_for < timedelta(0) or min(self.margin_ratio, self.margin_absolute) < 0:
            raise ValueError("pending durations and hysteresis margins cannot be negative")
        if self.repeat_every is not None and self.repeat_every <= timedelta(0):
            raise ValueError("a repeat interval is positive (None: never repeat)")

    def margin(self, threshold: float) -> float:
        return self.margin_absolute + self.margin_ratio * abs(threshold)


@dataclass(frozen=True)
class LifecycleConfig:
    default: RulePolicy = field(default_factory=RulePolicy)
    #: Per rule id, or per dotted prefix of one ("voc-hourly" covers "voc-hourly.a24088").
    by_rule: Mapping[str, RulePolicy] = field(default_factory=dict)
    send_replays: bool = False
    #: Silences are forgotten this long after they end (late data may still fall in them).
    silence_retention: timedelta = timedelta(days=30)

    def policy(self, rule_id: str) -> RulePolicy:
        """The policy for ``rule_id``: its own, its longest dotted prefix's, or the default."""
        name = rule_id
        while True:
            if name in self.by_rule:
                return self.by_rule[name]
            if "." not in name:
                return self.default
            name = name.rsplit(".", 1)[0]


@dataclass(frozen=True)
class Silence:
    """Mutes matching alerts between ``start`` and ``end``; patterns are shell-style
    (``energy-budget.*``). ``enterprise="*"`` also matches subjects with no enterprise."""

    silence_id: str
    start: datetime
    end: datetime
    rule: str = "*"
    subject: str = "*"
    enterprise: str = "*"
    kind: SilenceKind = SilenceKind.SILENCE
    created_by: str = ""
    comment: str = ""

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"silence {self.silence_id} ends before it starts")

    def matches(self, rule_id: str, subject: str, enterprise_code: str | None) -> bool:
        enterprise_ok = self.enterprise == "*" or (
            enterprise_code is not None and fnmatchcase(enterprise_code, self.enterprise)
        )
        return (
            enterprise_ok and fnmatchcase(rule_id, self.rule) and fnmatchcase(subject, self.subject)
        )

    def covers(self, at: datetime) -> bool:
        return self.start <= at < self.end


@dataclass(frozen=True)
class Acknowledgement:
    user: str
    comment: str
    at: datetime  # wall time
    expires_at: datetime


@dataclass(frozen=True)
class AlertState:
    """One active (pending or firing) alert. ``severity`` is the highest reached."""

    alert_id: str
    rule_id: str
    subject: str
    status: AlertStatus
    severity: Severity
    started_at: datetime  # event time the condition was first met
    last_at: datetime  # event time of the latest condition applied
    value: float | None
    threshold: float | None
    unit: str
    message: str
    higher_is_worse: bool
    enterprise_code: str | None
    level: str | None
    replay: bool = False  # fired from replayed data
    notified: bool = False  # some event of it was delivered
    last_notice_at: datetime | None = None  # wall time of the last fired/escalated/repeat
    repeats: int = 0
    acks: int = 0
    ack: Acknowledgement | None = None


@dataclass(frozen=True)
class LifecycleEvent:
    """Something that happened to an alert. ``at`` is the event time of the observation
    behind it, ``emitted_at`` the wall time; ``deliver`` says whether a notifier sends it."""

    event_id: str
    kind: EventKind
    alert_id: str
    rule_id: str
    subject: str
    enterprise_code: str | None
    severity: Severity
    previous_severity: Severity | None
    value: float | None
    threshold: float | None
    unit: str
    level: str | None
    message: str
    started_at: datetime
    at: datetime
    emitted_at: datetime
    replay: bool
    deliver: bool
    suppressed_by: str | None = None
    acknowledgement: Acknowledgement | None = None


@dataclass(frozen=True)
class _Step:
    """One observation being applied: event time, wall time, replay flag, rule policy."""

    at: datetime
    now: datetime
    replay: bool
    policy: RulePolicy


class UnknownAlert(LookupError):
    """No firing alert has the id given."""


def _digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def _utc(at: datetime, what: str) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware")
    return at.astimezone(UTC)


class AlertLifecycle:
    """The lifecycle of every alert: feed it conditions with ``observe``; it returns the
    events to record and (where ``deliver``) to send."""

    def __init__(self, config: LifecycleConfig) -> None:
        self.config = config
        self._alerts: dict[tuple[str, str], AlertState] = {}
        self._silences: dict[str, Silence] = {}
        #: the event time of the latest verdict applied per (rule, subject), kept after an
        #: alert resolves: a verdict older than it is stale (a replay, a re-judged past period)
        self._judged: dict[tuple[str, str], datetime] = {}

    # -- inputs ---------------------------------------------------------------------------

    def observe(self, conditions: Iterable[Condition], now: datetime) -> list[LifecycleEvent]:
        """Apply conditions in order at wall time ``now``; the events they cause."""
        now = _utc(now, "now")
        retention = self.config.silence_retention
        for silence_id in [s for s, v in self._silences.items() if v.end + retention <= now]:
            del self._silences[silence_id]
        events: list[LifecycleEvent] = []
        for condition in conditions:
            events.extend(self._apply(condition, now))
        return events

    def acknowledge(
        self, alert_id: str, user: str, comment: str, expires_at: datetime, now: datetime
    ) -> list[LifecycleEvent]:
        """``user`` takes a firing alert in hand: no repeats until ``expires_at`` or an
        escalation. ``UnknownAlert`` if no firing alert has that id."""
        now, expires_at = _utc(now, "now"), _utc(expires_at, "expires_at")
        if expires_at <= now:
            raise ValueError("an acknowledgement expires after it is given")
        found = [
            (key, state)
            for key, state in self._alerts.items()
            if state.alert_id == alert_id and state.status is AlertStatus.FIRING
        ]
        if not found:
            raise UnknownAlert(alert_id)
        key, state = found[0]
        ack = Acknowledgement(user, comment, now, expires_at)
        state = replace(state, ack=ack, acks=state.acks + 1)
        self._alerts[key] = state
        step = _Step(state.last_at, now, False, self.config.policy(state.rule_id))
        event = self._event(EventKind.ACKNOWLEDGED, state, step, str(state.acks))
        return [replace(event, acknowledgement=ack)]

    def add_silence(self, silence: Silence, now: datetime) -> list[LifecycleEvent]:
        """Add (or replace) a silence or maintenance window; a ``silenced`` event for each
        firing alert it covers now (undelivered: a record of who muted what)."""
        now = _utc(now, "now")
        silence = replace(silence, start=_utc(silence.start, "start"), end=_utc(silence.end, "end"))
        self._silences[silence.silence_id] = silence
        events = []
        for key in sorted(self._alerts):
            state = self._alerts[key]
            when = now if silence.kind is SilenceKind.SILENCE else state.last_at
            if (
                state.status is AlertStatus.FIRING
                and silence.matches(state.rule_id, state.subject, state.enterprise_code)
                and silence.covers(when)
            ):
                step = _Step(state.last_at, now, False, self.config.policy(state.rule_id))
                event = self._event(EventKind.SILENCED, state, step, silence.silence_id)
                events.append(replace(event, deliver=False, suppressed_by=silence.silence_id))
        return events

    def remove_silence(self, silence_id: str) -> None:
        """End a silence early (nothing if there is none by that id)."""
        self._silences.pop(silence_id, None)

    # -- reading --------------------------------------------------------------------------

    def alerts(self) -> list[AlertState]:
        """Every active alert, pending and firing, by (rule, subject)."""
        return [self._alerts[key] for key in sorted(self._alerts)]

    def alert(self, rule_id: str, subject: str) -> AlertState | None:
        return self._alerts.get((rule_id, subject))

    # -- the state machine ----------------------------------------------------------------

    def _apply(self, condition: Condition, now: datetime) -> list[LifecycleEvent]:
        policy = self.config.policy(condition.rule_id)
        at = _utc(condition.at, "condition time")
        step = _Step(at, now, condition.replay or now - at > policy.replay_lag, policy)
        key = (condition.rule_id, condition.subject)
        state = self._alerts.get(key)
        if at < self._judged.get(key, at):
            return []  # older than a verdict already applied: out of order, ignore
        self._judged[key] = at
        if state is None and condition.severity is None:
            return []
        if state is None:
            state = AlertState(
                alert_id=_digest(condition.rule_id, condition.subject, at.isoformat()),
                rule_id=condition.rule_id,
                subject=condition.subject,
                status=AlertStatus.PENDING,
                severity=condition.severity or Severity.INFO,
                started_at=at,
                last_at=at,
                value=condition.value,
                threshold=condition.threshold,
                unit=condition.unit,
                message=condition.message,
                higher_is_worse=condition.higher_is_worse,
                enterprise_code=condition.enterprise_code,
                level=condition.level,
            )
        previous = state.severity
        state = replace(
            state,
            severity=highest(previous, condition.severity) or previous,
            last_at=at,
            value=condition.value,
            threshold=condition.threshold,
            message=condition.message,
            level=condition.level,
        )
        if state.status is AlertStatus.PENDING:
            if condition.severity is None:
                del self._alerts[key]  # not held for long enough: never fired, nothing to say
                return []
            if at - state.started_at < policy.pending_for:
                self._alerts[key] = state
                return []
            state = replace(state, status=AlertStatus.FIRING, replay=step.replay)
            return [self._notice(step, EventKind.FIRED, state, "")]
        if condition.severity is None and _clear(condition, policy):
            del self._alerts[key]
            event = self._event(EventKind.RESOLVED, state, step, "")
            # told of the firing, told of the end (even under a silence); never told, never
            if state.notified:
                return [replace(event, deliver=True, suppressed_by=None)]
            return [replace(event, deliver=False)]
        if state.severity.rank > previous.rank:
            state = replace(state, ack=None)  # an escalation is news even to whoever acked
            return [self._notice(step, EventKind.ESCALATED, state, state.severity, previous)]
        return self._maybe_repeat(step, state)

    def _maybe_repeat(self, step: _Step, state: AlertState) -> list[LifecycleEvent]:
        self._alerts[(state.rule_id, state.subject)] = state
        acked = state.ack is not None and step.now < state.ack.expires_at
        if step.replay or acked or self._suppressor(state, step.at, step.now) is not None:
            return []
        every = step.policy.repeat_every
        due = not state.notified or (
            every is not None
            and state.last_notice_at is not None
            and step.now - state.last_notice_at >= every
        )
        if not due:
            return []
        state = replace(state, repeats=state.repeats + 1)
        return [self._notice(step, EventKind.REPEATED, state, str(state.repeats))]

    def _notice(
        self,
        step: _Step,
        kind: EventKind,
        state: AlertState,
        seq: str,
        previous: Severity | None = None,
    ) -> LifecycleEvent:
        """A fired, escalated or repeated event, keeping the alert's state after it."""
        event = self._event(kind, state, step, seq, previous)
        state = replace(state, last_notice_at=step.now, notified=state.notified or event.deliver)
        self._alerts[(state.rule_id, state.subject)] = state
        return event

    def _suppressor(self, state: AlertState, at: datetime, now: datetime) -> str | None:
        for silence_id in sorted(self._silences):
            silence = self._silences[silence_id]
            when = now if silence.kind is SilenceKind.SILENCE else at
            if silence.covers(when) and silence.matches(
                state.rule_id, state.subject, state.enterprise_code
            ):
                return silence_id
        return None

    def _event(
        self,
        kind: EventKind,
        state: AlertState,
        step: _Step,
        seq: str,
        previous: Severity | None = None,
    ) -> LifecycleEvent:
        suppressed_by = self._suppressor(state, step.at, step.now)
        return LifecycleEvent(
            event_id=_digest(state.alert_id, kind.value, seq),
            kind=kind,
            alert_id=state.alert_id,
            rule_id=state.rule_id,
            subject=state.subject,
            enterprise_code=state.enterprise_code,
            severity=state.severity,
            previous_severity=previous,
            value=state.value,
            threshold=state.threshold,
            unit=state.unit,
            level=state.level,
            message=state.message,
            started_at=state.started_at,
            at=step.at,
            emitted_at=step.now,
            replay=step.replay,
            deliver=suppressed_by is None and (not step.replay or self.config.send_replays),
            suppressed_by=suppressed_by,
        )

    # -- state ----------------------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """The whole state as plain JSON-able data (sorted, so equal states are equal)."""
        return {
            "version": SNAPSHOT_VERSION,
            "alerts": [_plain(self._alerts[key]) for key in sorted(self._alerts)],
            "silences": [_plain(self._silences[key]) for key in sorted(self._silences)],
            "judged": [[*key, self._judged[key].isoformat()] for key in sorted(self._judged)],
        }

    @classmethod
    def restore(cls, config: LifecycleConfig, snapshot: Mapping[str, Any]) -> "AlertLifecycle":
        """A lifecycle continuing exactly where the one that took ``snapshot`` stopped."""
        if snapshot.get("version") != SNAPSHOT_VERSION:
            raise ValueError(
                f"cannot restore a lifecycle snapshot of version {snapshot.get('version')}"
            )
        lifecycle = cls(config)
        for row in snapshot["alerts"]:
            state = _build(AlertState, row)
            lifecycle._alerts[(state.rule_id, state.subject)] = state
        for row in snapshot["silences"]:
            silence = _build(Silence, row)
            lifecycle._silences[silence.silence_id] = silence
        for rule_id, subject, at in snapshot.get("judged", []):
            lifecycle._judged[(rule_id, subject)] = datetime.fromisoformat(at)
        return lifecycle


def _clear(condition: Condition, policy: RulePolicy) -> bool:
    """Whether a condition no longer met is far enough from its line to resolve."""
    if condition.threshold is None or condition.value is None:
        return True
    margin = policy.margin(condition.threshold)
    if condition.higher_is_worse:
        return condition.value <= condition.threshold - margin
    return condition.value >= condition.threshold + margin


def _plain(value: Any) -> Any:
    """A state value as JSON-able data: times as ISO text, enums as their values."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    return value


def _build(cls: type[_T], row: Mapping[str, Any]) -> _T:
    """The dataclass ``cls`` from ``_plain`` data, reading each field's type for how."""
    hints = get_type_hints(cls)
    return cls(**{f.name: _parse(hints[f.name], row[f.name]) for f in fields(cls)})  # type: ignore[arg-type]


def _parse(hint: Any, value: Any) -> Any:
    if value is None:
        return None
    for kind in get_args(hint) or (hint,):  # X | None: the X
        if kind is datetime:
            return datetime.fromisoformat(value)
        if isinstance(kind, type) and issubclass(kind, Enum):
            return kind(value)
        if isinstance(kind, type) and is_dataclass(kind):
            return _build(kind, value)
    return value
