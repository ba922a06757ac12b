"""Rate limits: at most N messages per recipient in any M seconds, a storm of alert events
folded into digests, and no event ever lost, repeated or reordered, across restarts too."""

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from alerts.rate_limit import RateLimit, RateLimiter, RateLimitState, Release
from contracts.alert_events import AlertEvent, AlertKind, AlertSeverity, AlertStatus

T0 = datetime(2026, 11, 1, tzinfo=UTC)
TWO_PER_TEN_MINUTES = RateLimit(max_messages=2, per_seconds=600)


def alert(n: int, kind: AlertKind = AlertKind.FIRED) -> AlertEvent:
    return AlertEvent(
        event_id=f"{n:032x}",
        alert_id=f"{n % 7:032x}",
        kind=kind,
        rule_id="r",
        severity=AlertSeverity.WARNING,
        enterprise_code="91350100M000100Y43",
        region_code="350102",
        subject=f"M{n}",
        value=2,
        threshold=1,
        unit="kWh",
        message="m",
        started_at=T0,
        at=T0,
        emitted_at=T0,
    )


def minute(m: float) -> datetime:
    return T0 + timedelta(minutes=m)


def subjects(releases: list[Release]) -> list[list[str]]:
    return [[a.subject for a in r.events] for r in releases]


def test_a_storm_is_held_and_sent_as_one_digest_when_a_slot_frees():
    # max 2 per 10 min           a's slot frees at 10, b's at 11
    # t(min)   0    1    2    3   ...  10      11
    # offer    a    b    c    d        e
    # sent     a    b                  [c d]   e
    # held               c    c d      e
    limiter = RateLimiter(TWO_PER_TEN_MINUTES)
    assert subjects(limiter.offer("r", alert(1), minute(0))) == [["M1"]]
    assert subjects(limiter.offer("r", alert(2), minute(1))) == [["M2"]]
    assert limiter.offer("r", alert(3), minute(2)) == []
    assert limiter.offer("r", alert(4), minute(3)) == []
    assert limiter.next_due() == minute(10)
    assert limiter.due(minute(9.99)) == []
    assert subjects(limiter.offer("r", alert(5), minute(10))) == [["M3", "M4"]]
    assert limiter.held_count() == 1
    assert limiter.next_due() == minute(11)
    [late] = limiter.due(minute(11))
    assert subjects([late]) == [["M5"]]
    assert not late.is_digest
    assert limiter.next_due() is None


def test_resolved_notices_in_a_storm_arrive_in_the_digest():
    limiter = RateLimiter(RateLimit(max_messages=1, per_seconds=60))
    limiter.offer("r", alert(1), minute(0))
    limiter.offer("r", alert(2), minute(0.1))
    limiter.offer("r", alert(1_000_001, AlertKind.RESOLVED), minute(0.2))
    [digest] = limiter.due(minute(1))
    assert digest.is_digest
    assert [a.status for a in digest.events] == [AlertStatus.FIRING, AlertStatus.RESOLVED]


def test_recipients_are_limited_separately_and_may_have_their_own_limit():
    limiter = RateLimiter(
        RateLimit(max_messages=1, per_seconds=60),
        {"busy": RateLimit(max_messages=3, per_seconds=60)},
    )
    sent: defaultdict[str, int] = defaultdict(int)
    for n in range(5):
        for recipient in ("quiet", "busy"):
            sent[recipient] += len(limiter.offer(recipient, alert(n), minute(0)))
    assert sent == {"quiet": 1, "busy": 3}


def test_a_digest_key_is_stable_and_differs_from_any_single_events_key():
    one = Release("r", (alert(1),))
    both = Release("r", (alert(1), alert(2)))
    assert one.idempotency_key == alert(1).event_id
    assert both.event_ids == (alert(1).event_id, alert(2).event_id)
    assert both.idempotency_key == Release("other", (alert(1), alert(2))).idempotency_key
    assert both.idempotency_key.startswith("digest-")
    assert both.idempotency_key != Release("r", (alert(2), alert(1))).idempotency_key


def test_times_must_be_timezone_aware():
    with pytest.raises(ValueError, match="timezone-aware"):
        RateLimiter(TWO_PER_TEN_MINUTES).offer("r", alert(1), datetime(2026, 1, 1))


# A run: a limit, then steps of (seconds later, recipient or None for a timer tick).
limits = st.builds(
    RateLimit,
    max_messages=st.integers(min_value=1, max_value=4),
    per_seconds=st.sampled_from([1.0, 30.0, 60.0, 600.0]),
)
steps = st.lists(
    st.tuples(st.integers(min_value=0, max_value=120), st.sampled_from(["a", "b", "c", None])),
    max_size=60,
)


def play(limiter: RateLimiter, plan, start: datetime = T0, first: int = 0):
    """Play ``plan``: return what was offered to whom, what was released (and when), and the
    time of the last step. Alerts alternate firing and resolved."""
    offered: dict[str, list[str]] = defaultdict(list)
    released: list[tuple[datetime, Release]] = []
    now = start
    for n, (seconds, recipient) in enumerate(plan, start=first):
        now += timedelta(seconds=seconds)
        if recipient is None:
            out = limiter.due(now)
        else:
            event = alert(n, AlertKind.RESOLVED if n % 2 else AlertKind.FIRED)
            offered[recipient].append(event.event_id)
            out = limiter.offer(recipient, event, now)
        released += [(now, r) for r in out]
    return offered, released, now


def drain(limiter: RateLimiter, now: datetime) -> list[tuple[datetime, Release]]:
    """Tick at each ``next_due()`` until nothing is held."""
    released = []
    while (due := limiter.next_due()) is not None:
        now = max(now, due)
        out = limiter.due(now)
        assert out, "next_due() promised a release that due() did not make"
        released += [(now, r) for r in out]
    return released


@given(limits, steps)
def test_every_event_is_sent_exactly_once_alone_or_in_one_digest_in_arrival_order(limit, plan):
    limiter = RateLimiter(limit)
    offered, released, now = play(limiter, plan)
    released += drain(limiter, now)
    assert limiter.held_count() == 0
    by_recipient: dict[str, list[str]] = defaultdict(list)
    for _, release in released:
        by_recipient[release.recipient_id] += [a.event_id for a in release.events]
    assert by_recipient == offered  # same events, same order, per recipient
    counts = Counter(i for ids in by_recipient.values() for i in ids)
    assert all(c == 1 for c in counts.values())


@given(limits, steps)
def test_no_recipient_gets_more_than_the_limit_in_any_window(limit, plan):
    limiter = RateLimiter(limit)
    _, released, now = play(limiter, plan)
    released += drain(limiter, now)
    times: dict[str, list[datetime]] = defaultdict(list)
    for when, release in released:
        times[release.recipient_id].append(when)
    window = timedelta(seconds=limit.per_seconds)
    n = limit.max_messages
    for sent in times.values():
        assert sent == sorted(sent)
        for earlier, later in zip(sent, sent[n:], strict=False):
            assert later - earlier >= window


@given(limits, steps, steps)
def test_a_restart_from_a_snapshot_continues_exactly_as_if_nothing_happened(limit, before, after):
    running = RateLimiter(limit)
    _, _, now = play(running, before)
    saved = running.snapshot().model_dump_json()
    restarted = RateLimiter(limit, state=RateLimitState.model_validate_json(saved))

    def rest(limiter):
        _, released, end = play(limiter, after, start=now, first=len(before))
        released += drain(limiter, end)
        return [(when, r.recipient_id, r.idempotency_key) for when, r in released]

    assert rest(restarted) == rest(running)
