"""Routing: an alert event goes to its own enterprise, the supervisors of its region and the
operators, only; a regional event (no enterprise) to no enterprise at all."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr, ValidationError

from alerts.channels.targets import DingTalkTarget, EmailTarget, WebhookTarget, WeComTarget
from alerts.rate_limit import RateLimit
from alerts.routing import (
    EnterpriseRecipient,
    OperatorRecipient,
    RoutingConfig,
    SupervisorRecipient,
    everything_to,
    load_routing,
    recipients_for,
    region_covers,
)
from contracts.alert_events import AlertEvent, AlertKind, AlertSeverity
from contracts.identifiers import uscc_check_character
from energywatch.config_files import ConfigFileError
from tests.strategies import alert_events, enterprise_codes

EXAMPLE = Path(__file__).resolve().parent.parent / "plans" / "recipients.example.yaml"
HEJIN_STEEL = "9114088212JX9EJR64"  # county 140882 (河津), city 140800 (运城)
JISHAN_CEMENT = "91140824ENX1MWJ09E"  # county 140824 (稷山)
COUNTIES = {HEJIN_STEEL: "140882", JISHAN_CEMENT: "140824"}
EMAIL = (EmailTarget(address="x@y.example"),)


def alert_for(code: str | None, region: str | None = None) -> AlertEvent:
    return AlertEvent(
        event_id="1" * 32,
        alert_id="0" * 32,
        kind=AlertKind.FIRED,
        rule_id="r",
        severity=AlertSeverity.WARNING,
        enterprise_code=code,
        region_code=region,
        subject="M1" if code else f"county-{region}",
        value=2,
        threshold=1,
        unit="kWh",
        message="m",
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        at=datetime(2026, 1, 1, tzinfo=UTC),
        emitted_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


def enterprise(code: str, rid: str | None = None) -> EnterpriseRecipient:
    return EnterpriseRecipient(id=rid or code, name=code, enterprise_code=code, channels=EMAIL)


def supervisor(region: str, rid: str | None = None) -> SupervisorRecipient:
    return SupervisorRecipient(
        id=rid or f"sup-{region}", name=region, region_code=region, channels=EMAIL
    )


def ids(recipients) -> list[str]:
    return [r.id for r in recipients]


def test_the_example_file_loads_with_every_kind_of_channel_and_keeps_secrets_hidden():
    config = load_routing(EXAMPLE)
    assert ids(config.recipients) == [
        "hejin-steel",
        "jishan-cement",
        "yuncheng-city",
        "hejin-county",
        "ops-desk",
    ]
    kinds = {type(c) for r in config.recipients for c in r.channels}
    assert kinds == {WebhookTarget, EmailTarget, DingTalkTarget, WeComTarget}
    steel = config.by_id["hejin-steel"]
    assert isinstance(steel.channels[0].secret, SecretStr)
    assert "replace-with-the-shared-webhook-secret" not in repr(config)
    assert config.rate_limit_overrides["jishan-cement"] == RateLimit(
        max_messages=3, per_seconds=900
    )
    assert "hejin-steel" not in config.rate_limit_overrides


def test_with_the_example_file_an_alert_reaches_its_enterprise_county_city_and_operators_only():
    config = load_routing(EXAMPLE)
    assert ids(recipients_for(alert_for(HEJIN_STEEL), config, COUNTIES)) == [
        "hejin-steel",
        "yuncheng-city",
        "hejin-county",
        "ops-desk",
    ]
    assert ids(recipients_for(alert_for(JISHAN_CEMENT), config, COUNTIES)) == [
        "jishan-cement",
        "yuncheng-city",
        "ops-desk",
    ]


def test_a_regional_alert_reaches_the_supervisors_covering_its_region_and_no_enterprise():
    config = load_routing(EXAMPLE)
    assert ids(recipients_for(alert_for(None, "140882"), config, COUNTIES)) == [
        "yuncheng-city",
        "hejin-county",
        "ops-desk",
    ]
    # a city-wide alert: the city's office, not a county's
    assert ids(recipients_for(alert_for(None, "140800"), config, COUNTIES)) == [
        "yuncheng-city",
        "ops-desk",
    ]
    # a regional alert that names no region reaches the operators alone
    assert ids(recipients_for(alert_for(None), config, COUNTIES)) == ["ops-desk"]


def test_an_events_own_region_wins_over_the_register_and_the_credit_code():
    config = RoutingConfig(recipients=(supervisor("140800"), supervisor("610400")))
    assert ids(recipients_for(alert_for(HEJIN_STEEL, "610402"), config, COUNTIES)) == ["sup-610400"]


def test_without_a_recipients_file_the_one_webhook_hears_of_everything():
    config = everything_to(
        WebhookTarget(url="http://127.0.0.1:9/hook"), RateLimit(max_messages=5, per_seconds=60)
    )
    [operator] = config.recipients
    assert isinstance(operator, OperatorRecipient)
    for event in (alert_for(HEJIN_STEEL), alert_for(None, "140882"), alert_for(None)):
        assert recipients_for(event, config, {}) == (operator,)
    assert config.rate_limit_overrides == {"default": RateLimit(max_messages=5, per_seconds=60)}


def test_a_city_covers_its_counties_a_county_only_itself_a_province_its_cities():
    assert region_covers("140800", "140882")
    assert region_covers("140800", "140824")
    assert not region_covers("140800", "140702")
    assert region_covers("140882", "140882")
    assert not region_covers("140882", "140881")
    assert region_covers("140000", "140882")
    assert not region_covers("140000", "610402")


def test_a_unit_missing_from_the_register_is_placed_by_its_credit_codes_area():
    config = RoutingConfig(recipients=(supervisor("140800"), supervisor("610400")))
    assert ids(recipients_for(alert_for(HEJIN_STEEL), config, {})) == ["sup-140800"]
    # the register wins over the code when both are known
    moved = {HEJIN_STEEL: "610402"}
    assert ids(recipients_for(alert_for(HEJIN_STEEL), config, moved)) == ["sup-610400"]


@st.composite
def look_alike_codes(draw: st.DrawFn) -> str:
    """Valid credit codes from a tiny alphabet, so that codes sharing a prefix, an area or
    all but one character are common."""
    first17 = (
        draw(st.sampled_from(["91", "92"]))
        + draw(st.sampled_from(["140882", "140824", "140800"]))
        + draw(st.text("0A", min_size=9, max_size=9))
    )
    return first17 + uscc_check_character(first17)


codes = st.lists(
    st.one_of(look_alike_codes(), enterprise_codes()), min_size=1, max_size=6, unique=True
)
counties = st.text("0123456789", min_size=6, max_size=6).filter(lambda c: c[:2] != "00")


@given(codes, st.data())
def test_an_enterprise_never_receives_another_enterprises_alert(all_codes, data):
    recipients: list[EnterpriseRecipient | SupervisorRecipient]
    recipients = [enterprise(code, f"e{i}") for i, code in enumerate(all_codes)]
    recipients += [
        supervisor(r, f"s{i}") for i, r in enumerate(data.draw(st.lists(counties, max_size=3)))
    ]
    config = RoutingConfig(recipients=tuple(data.draw(st.permutations(recipients))))
    county_of = {code: data.draw(counties) for code in all_codes}
    owner = data.draw(st.sampled_from(all_codes))
    chosen = recipients_for(alert_for(owner), config, county_of)
    enterprises = [r for r in chosen if isinstance(r, EnterpriseRecipient)]
    assert [r.enterprise_code for r in enterprises] == [owner]


@given(alert_events(), codes)
def test_no_enterprise_receives_a_regional_event_or_anothers(event, all_codes):
    config = RoutingConfig(
        recipients=tuple(enterprise(code, f"e{i}") for i, code in enumerate(all_codes))
    )
    chosen = recipients_for(event, config, {})
    if event.enterprise_code is None:
        assert chosen == ()
    else:
        assert all(r.enterprise_code == event.enterprise_code for r in chosen)


@given(enterprise_codes(), counties, st.lists(counties, min_size=1, max_size=5, unique=True))
def test_a_supervisor_receives_an_alert_exactly_when_its_region_covers_the_units_county(
    code, county, regions
):
    regions = [*regions, county[:4] + "00", county[:2] + "0000"]  # its city and its province
    config = RoutingConfig(
        recipients=tuple(supervisor(r, f"s{i}") for i, r in enumerate(dict.fromkeys(regions)))
    )
    chosen = recipients_for(alert_for(code), config, {code: county})
    assert {r.region_code for r in chosen} == {r for r in regions if region_covers(r, county)}
    assert county[:4] + "00" in {r.region_code for r in chosen}


def test_recipient_ids_must_be_unique():
    with pytest.raises(ValidationError, match="more than once: a"):
        RoutingConfig(recipients=(enterprise(HEJIN_STEEL, "a"), enterprise(JISHAN_CEMENT, "a")))


def test_a_supervisor_needs_a_real_region_and_a_recipient_a_channel():
    with pytest.raises(ValidationError):
        supervisor("000000")
    with pytest.raises(ValidationError):
        supervisor("1408")
    with pytest.raises(ValidationError):
        EnterpriseRecipient(id="e", name="e", enterprise_code=HEJIN_STEEL, channels=())


def test_a_bad_recipients_file_names_each_problem_but_never_shows_a_secret(tmp_path):
    path = tmp_path / "recipients.yaml"
    path.write_text(
        """
version: 1
recipients:
  - kind: enterprise
    id: a
    name: A
    enterprise_code: 9114088212JX9EJR64
    channels:
      - kind: dingtalk
        webhook_url: ftp://robot/send?access_token=TOKEN-xyz
        secret: SEC-very-secret
      - kind: pager
        number: SEC-other-secret
""",
        encoding="utf-8",
    )
    with pytest.raises(ConfigFileError) as caught:
        load_routing(path)
    message = str(caught.value)
    assert "recipients.0.enterprise.channels.0.dingtalk.webhook_url" in message
    assert "recipients.0.enterprise.channels.1" in message
    for secret in ("TOKEN-xyz", "SEC-very-secret", "SEC-other-secret"):
        assert secret not in message
    assert caught.value.__cause__ is None
