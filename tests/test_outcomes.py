"""The demo's judge: scenario expectations against alert events (pure)."""

import hashlib
from datetime import datetime
from pathlib import Path

from contracts.alert_events import AlertEvent, AlertKind, AlertSeverity
from contracts.identifiers import CHINA_STANDARD_TIME
from contracts.readings import EnergyType
from simulators.outcomes import check_outcomes, resolve_subject
from simulators.scenario import load_scenario

SCENARIO = load_scenario(Path(__file__).parent.parent / "scenarios" / "demo.yaml")
FLEET = SCENARIO.fleet
MONITORS = ["YCVOC0001", "YCVOC0002"]


def cst(day: int, hour: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, tzinfo=CHINA_STANDARD_TIME)


def event(
    rule: str,
    subject: str,
    at: datetime,
    severity: str = "warning",
    kind=AlertKind.FIRED,
    alert: str = "a",
):
    return AlertEvent(
        event_id=hashlib.sha256(f"{kind}{alert}{at}".encode()).hexdigest()[:32],
        alert_id=alert * 32,
        kind=kind,
        rule_id=rule,
        subject=subject,
        severity=AlertSeverity(severity),
        message="m",
        started_at=at,
        at=at,
        emitted_at=at,
    )


def results(events):
    return {(c.expected.rule, c.expected.subject): c for c in check_outcomes(SCENARIO, events)}


def test_subjects_resolve_to_codes_meters_and_monitors():
    steel = FLEET.enterprise("hj-steel")
    assert resolve_subject(FLEET, MONITORS, "hj-steel").ids == (steel.code,)
    meter = resolve_subject(FLEET, MONITORS, "hj-steel/electricity").ids
    assert meter == (steel.meter(EnergyType.ELECTRICITY).meter_id,)
    assert resolve_subject(FLEET, MONITORS, "YCVOC0001").ids == ("YCVOC0001",)


def test_an_alert_in_the_window_meets_fires_and_one_outside_does_not():
    voc = ("voc-hourly", "YCVOC0001")
    inside = event("voc-hourly.a24088", "YCVOC0001.a24088", cst(12, 16))
    resolved = event(
        "voc-hourly.a24088", "YCVOC0001.a24088", cst(12, 21), "critical", AlertKind.RESOLVED
    )
    assert results([inside, resolved])[voc].met
    late = event("voc-hourly.a24088", "YCVOC0001.a24088", cst(12, 19))
    check = results([late])[voc]
    assert not check.met
    assert "outside the window" in check.why
    resolved_only = event(
        "voc-hourly.a24088", "YCVOC0001.a24088", cst(12, 16), kind=AlertKind.RESOLVED
    )
    assert not results([resolved_only])[voc].met


def test_an_expected_resolution_must_come_in_its_window_and_of_the_alert_that_fired():
    voc = ("voc-hourly", "YCVOC0001")
    fired = event("voc-hourly.a24088", "YCVOC0001.a24088", cst(12, 16))
    never = results([fired])[voc]
    assert not never.met
    assert never.why.endswith("but never resolved")
    early = event("voc-hourly.a24088", "YCVOC0001.a24088", cst(12, 17), kind=AlertKind.RESOLVED)
    assert "resolved only outside the window" in results([fired, early])[voc].why
    # another alert of the same rule and subject resolving does not resolve this one
    other = event(
        "voc-hourly.a24088", "YCVOC0001.a24088", cst(12, 21), kind=AlertKind.RESOLVED, alert="b"
    )
    assert not results([fired, other])[voc].met
    on_time = event("voc-hourly.a24088", "YCVOC0001.a24088", cst(12, 21), kind=AlertKind.RESOLVED)
    check = results([fired, on_time])[voc]
    assert check.met
    assert (check.alert_id, check.resolution) == (fired.alert_id, on_time)


def test_a_county_is_named_by_its_division_code():
    county = ("energy-budget.county.pace", "140882")
    assert resolve_subject(FLEET, MONITORS, "140882").ids == ("140882",)
    fired = event("energy-budget.county.pace", "140882", cst(9))
    resolved = event("energy-budget.county.pace", "140882", cst(12, 19), kind=AlertKind.RESOLVED)
    assert results([fired, resolved])[county].met


def test_silent_expectations_fail_on_any_alert_of_the_rule_about_the_subject():
    methanol = FLEET.enterprise("wx-methanol").code
    check = results([event("heavy-pollution.response", methanol, cst(13))])
    assert not check[("heavy-pollution.response", "wx-methanol")].met
    assert check[("heavy-pollution.response", "hj-steel")].why == "never fired"
    # another rule, or another subject, does not break the silence
    other = results([event("energy-budget.unit.share", methanol, cst(13))])
    assert other[("energy-budget.unit.pace", "wx-methanol")].met


def test_an_expected_severity_must_be_reached():
    scenario = load_scenario(Path(__file__).parent.parent / "scenarios" / "device-offline.yaml")
    meter = scenario.fleet.enterprise("hj-steel").meter(EnergyType.ELECTRICITY).meter_id
    notice = event(
        "data-quality.offline", meter, datetime(2026, 3, 12, tzinfo=CHINA_STANDARD_TIME), "notice"
    )
    by_key = {(c.expected.rule, c.expected.subject): c for c in check_outcomes(scenario, [notice])}
    assert not by_key[("data-quality.offline", "hj-steel/electricity")].met
    assert "only notice" in by_key[("data-quality.offline", "hj-steel/electricity")].why
