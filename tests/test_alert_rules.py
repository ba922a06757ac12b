"""Alert rules (pure): each rule fires on a case stated with its expected condition and time,
and stays quiet on one that does not cross its line."""

import json
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from alerts.rules.barometer import (
    INTENSITY_RULE,
    TOTAL_RULE,
    Band,
    BarometerConfig,
    CompletionScheme,
    Level,
    RegionPeriod,
    evaluate_barometer,
    evaluate_completion,
)
from alerts.rules.budget_forecast import ForecastConfig, evaluate_forecast
from alerts.rules.condition import Condition, Severity, graded, highest
from alerts.rules.data_quality import (
    DataQualityConfig,
    evaluate_completeness,
    evaluate_monthly_deviation,
)
from alerts.rules.device_silence import (
    GAP_RULE,
    OFFLINE_RULE,
    DeviceSilence,
    DeviceSilenceConfig,
)
from alerts.rules.energy_budget import BudgetConfig, BudgetScope, BudgetUse, evaluate_budget
from alerts.rules.heavy_pollution import (
    EmergencyLevel,
    HeavyPollutionConfig,
    HeavyPollutionResponse,
    HourlyEnergy,
    ListedUnit,
)
from alerts.rules.product_energy import (
    ProductEnergyConfig,
    ProductEnergyLimit,
    ProductOutput,
    evaluate_product_energy,
)
from alerts.rules.seasonal_profile import SeasonalProfile
from alerts.rules.voc_limits import VocLimit, VocLimitsConfig, evaluate_voc
from contracts.identifiers import CHINA_STANDARD_TIME as CST
from contracts.voc import DataFlag, PollutantValue, VocSample
from plans.cn_calendar import ChinaCalendar

UNIT = "91350100M000100Y43"
NMHC = "a24088"


def cst(*args: int) -> datetime:
    return datetime(*args, tzinfo=CST)  # type: ignore[misc]


def by_rule(conditions: list[Condition]) -> dict[str, Condition]:
    return {c.rule_id: c for c in conditions}


# -- severities ---------------------------------------------------------------------------


def test_severities_order_by_seriousness_not_by_spelling():
    assert highest(Severity.CRITICAL, Severity.INFO, None) is Severity.CRITICAL
    assert highest(None, None) is None
    lines = ((0.8, Severity.NOTICE), (0.9, Severity.WARNING), (1.0, Severity.CRITICAL))
    assert graded(0.95, lines, inclusive=True) == (Severity.WARNING, 0.9)
    assert graded(0.5, lines, inclusive=True) == (None, 0.8)


def test_a_condition_refuses_a_naive_time():
    with pytest.raises(ValueError, match="tz-aware"):
        Condition("r", "s", datetime(2026, 1, 1), None, 1.0, 2.0, "x", "m")


# -- VOC limits (GB 37822-2019: NMHC 30 mg/m³ single, 10 mg/m³ hourly) ------------------

VOC_CONFIG = VocLimitsConfig(
    by_monitor={"YCVOC0001": (VocLimit(NMHC, 30.0, 10.0, "GB 37822-2019"),)}
)


def voc(interval: int, value: float, flag: str = "N", start: datetime | None = None) -> VocSample:
    return VocSample(
        monitor_id="YCVOC0001",
        enterprise_code=UNIT,
        data_time=start or datetime(2026, 3, 2, 2, 0, tzinfo=UTC),
        interval_seconds=interval,
        values={NMHC: PollutantValue(avg=value, flag=DataFlag(flag))},
    )


def test_a_single_nmhc_reading_above_30_fires_critical_at_the_end_of_its_minute():
    [condition] = evaluate_voc(voc(60, 31.5), VOC_CONFIG)
    assert condition.rule_id == "voc-single.a24088"
    assert condition.subject == "YCVOC0001"
    assert condition.severity is Severity.CRITICAL
    assert (condition.value, condition.threshold) == (31.5, 30.0)
    assert condition.at == datetime(2026, 3, 2, 2, 1, tzinfo=UTC)
    assert condition.enterprise_code == UNIT


def test_a_single_reading_at_the_limit_is_within_it():
    [condition] = evaluate_voc(voc(60, 30.0), VOC_CONFIG)
    assert condition.severity is None
    assert condition.threshold == 30.0


def test_an_hourly_average_above_10_fires_and_a_reading_of_12_within_a_minute_does_not():
    [hourly] = evaluate_voc(voc(3600, 12.0), VOC_CONFIG)
    assert hourly.rule_id == "voc-hourly.a24088"
    assert hourly.severity is Severity.CRITICAL
    assert hourly.threshold == 10.0
    assert hourly.at == datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
    [single] = evaluate_voc(voc(60, 12.0), VOC_CONFIG)  # 12 is fine as a single reading
    assert single.severity is None


def test_values_not_flagged_n_say_nothing_about_compliance():
    for flag in ("M", "C", "D", "T", "B"):
        assert evaluate_voc(voc(3600, 99.0, flag), VOC_CONFIG) == []


def test_monitors_and_pollutants_without_limits_and_daily_samples_give_no_condition():
    assert evaluate_voc(voc(60, 99.0), VocLimitsConfig()) == []
    day = voc(86_400, 99.0, start=datetime(2026, 3, 1, 16, tzinfo=UTC))
    assert evaluate_voc(day, VOC_CONFIG) == []


# -- energy budgets -------------------------------------------------------------------------

BUDGET = BudgetConfig()  # flat profile: the share of the year is the share of calendar time


def use(at: datetime, used: float, scope: BudgetScope = BudgetScope.UNIT) -> BudgetUse:
    return BudgetUse(UNIT, scope, at, used, 1000.0, enterprise_code=UNIT)


def test_the_budget_share_gives_notice_at_80_warning_at_90_and_critical_at_100_percent():
    # 1 December: 334/365 = 91.5% of the year gone, so pace stays under 1.0 throughout
    at = cst(2026, 12, 1)
    expected = {799.0: None, 800.0: "notice", 899.9: "notice", 900.0: "warning"}
    expected |= {1000.0: "critical"}
    for used, severity in expected.items():
        share = by_rule(evaluate_budget(use(at, used), BUDGET))["energy-budget.unit.share"]
        assert (share.severity.value if share.severity else None) == severity, used
        assert share.at == at
    pace = by_rule(evaluate_budget(use(at, 900.0), BUDGET))["energy-budget.unit.pace"]
    assert pace.value == pytest.approx(900 / 1000 / (334 / 365))  # 0.9835
    assert pace.severity is None


def test_the_budget_pace_gives_notice_above_1_0_and_warning_above_1_1():
    # 1 April 00:00 China time: (31 + 28 + 31) / 365 = 24.66% of the year expected gone
    at = cst(2026, 4, 1)
    cases = {246.0: (None, 1.0), 250.0: ("notice", 1.0), 280.0: ("warning", 1.1)}
    for used, (severity, line) in cases.items():
        pace = by_rule(evaluate_budget(use(at, used), BUDGET))["energy-budget.unit.pace"]
        # 246 / 246.58 = 0.998; 250 / 246.58 = 1.014; 280 / 246.58 = 1.136
        assert pace.value == pytest.approx(used / (1000 * 90 / 365))
        assert (pace.severity.value if pace.severity else None, pace.threshold) == (
            severity,
            line,
        )


def test_a_unit_monitored_since_march_is_paced_on_the_share_expected_since_then():
    # data from 1 March to 1 April: 31 of 365 days, so 100 tce of a 1000 tce budget is
    # pace 100 / (1000 × 31/365) = 1.18 (warning), where from New Year it would be 0.41
    at, since = cst(2026, 4, 1), cst(2026, 3, 1)
    late_joiner = BudgetUse(UNIT, BudgetScope.UNIT, at, 100.0, 1000.0, UNIT, monitored_from=since)
    paced = by_rule(evaluate_budget(late_joiner, BUDGET))
    assert paced["energy-budget.unit.pace"].value == pytest.approx(100 / (1000 * 31 / 365))
    assert paced["energy-budget.unit.pace"].severity is Severity.WARNING
    assert paced["energy-budget.unit.share"].value == pytest.approx(0.1)
    whole_year = by_rule(evaluate_budget(use(at, 100.0), BUDGET))["energy-budget.unit.pace"]
    assert whole_year.severity is None
    # a start in an earlier year means monitored all this year: New Year is the start
    old = BudgetUse(UNIT, BudgetScope.UNIT, at, 100.0, 1000.0, UNIT, cst(2025, 6, 1))
    assert by_rule(evaluate_budget(old, BUDGET))["energy-budget.unit.pace"].severity is None


def test_a_heating_citys_winter_use_is_on_pace_under_its_seasonal_profile():
    # winter months weigh 2, the rest 1: total 15; by 1 April 2+2+2 = 6/15 = 40% expected
    heating = SeasonalProfile((2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1))
    at = cst(2026, 4, 1)
    assert heating.expected_share(at) == pytest.approx(0.40)
    seasonal = by_rule(evaluate_budget(use(at, 350.0), BudgetConfig(profile=heating)))
    assert seasonal["energy-budget.unit.pace"].severity is None  # 0.35 / 0.40 = 0.875
    flat = by_rule(evaluate_budget(use(at, 350.0), BUDGET))
    assert flat["energy-budget.unit.pace"].severity is Severity.WARNING  # 0.35 / 0.2466 = 1.42


def test_pace_is_not_judged_in_the_first_days_of_the_year_and_counties_have_their_own_rule():
    conditions = by_rule(evaluate_budget(use(cst(2026, 1, 3), 50.0, BudgetScope.COUNTY), BUDGET))
    pace = conditions["energy-budget.county.pace"]
    assert (pace.severity, pace.threshold) == (None, None)  # 2/365 = 0.5% < 2%
    assert conditions["energy-budget.county.share"].severity is None


def test_the_expected_share_runs_from_china_new_year_to_the_next():
    flat = SeasonalProfile()
    assert flat.expected_share(cst(2026, 1, 1)) == 0.0
    assert flat.expected_share(datetime(2025, 12, 31, 16, tzinfo=UTC)) == 0.0  # CST midnight
    assert flat.expected_share(cst(2026, 7, 2, 12)) == pytest.approx(182.5 / 365)


# -- year-end forecast --------------------------------------------------------------------


def test_the_forecast_warns_before_the_budget_is_crossed():
    # 2 July 00:00: 182/365 of the year gone; 520 tce so far projects 520 × 365/182 = 1042.9
    at = cst(2026, 7, 2)
    condition = evaluate_forecast(use(at, 520.0), ForecastConfig())
    assert condition.rule_id == "budget-forecast.unit"
    assert condition.severity is Severity.WARNING
    assert condition.value == pytest.approx(1042.857, abs=1e-3)
    assert (condition.threshold, condition.at) == (1000.0, at)


def test_the_forecast_is_quiet_when_the_projection_fits_and_in_january():
    # 480 × 365/182 = 962.6 ≤ 1000
    assert evaluate_forecast(use(cst(2026, 7, 2), 480.0), ForecastConfig()).severity is None
    january = evaluate_forecast(use(cst(2026, 1, 5), 200.0), ForecastConfig())
    assert (january.severity, january.threshold) == (None, None)  # 4/365 < 2%


def test_the_forecast_is_judged_from_the_day_pace_is_and_agrees_with_it():
    # a unit monitored from 1 March: 9 days in, 2.5% of the year is expected since then
    # (> 2%); 40 tce against a 1,000 tce budget is pace 1.62 and projects 1,622 tce
    start, at = cst(2026, 3, 1), cst(2026, 3, 10)
    used = replace(use(at, 40.0), monitored_from=start)
    forecast = evaluate_forecast(used, ForecastConfig())
    pace = next(c for c in evaluate_budget(used, BudgetConfig()) if c.rule_id.endswith(".pace"))
    assert forecast.severity is Severity.WARNING
    assert pace.severity is Severity.WARNING
    assert pace.value is not None
    assert forecast.value == pytest.approx(pace.value * 1000.0)
    too_early = evaluate_forecast(replace(used, at=cst(2026, 3, 7)), ForecastConfig())
    assert too_early.threshold is None  # 6 days of March: 1.6% < 2%


# -- product energy per tonne (cement clinker: Yuncheng limit 110, benchmark 100 kgce/t) ----

CLINKER = ProductEnergyConfig(
    limits={"cement-clinker": ProductEnergyLimit("cement-clinker", 110.0, 100.0)}
)


def clinker(energy_kgce: float, output_t: float = 10_000.0) -> ProductOutput:
    return ProductOutput(UNIT, "cement-clinker", cst(2026, 4, 1), energy_kgce, output_t)


def test_clinker_above_the_limit_is_a_warning_and_above_the_benchmark_information():
    over = evaluate_product_energy(clinker(1_150_000.0), CLINKER)  # 115 kgce/t
    assert over.rule_id == "product-energy.cement-clinker"
    assert (over.severity, over.value, over.threshold) == (Severity.WARNING, 115.0, 110.0)
    assert over.at == cst(2026, 4, 1)
    near = evaluate_product_energy(clinker(1_050_000.0), CLINKER)  # 105 kgce/t
    assert (near.severity, near.threshold) == (Severity.INFO, 100.0)


def test_clinker_within_the_benchmark_or_with_no_output_gives_nothing_to_alert():
    assert evaluate_product_energy(clinker(980_000.0), CLINKER).severity is None  # 98 kgce/t
    assert evaluate_product_energy(clinker(5.0, output_t=0.0), CLINKER) is None
    with pytest.raises(ValueError, match="benchmark must be below"):
        ProductEnergyLimit("x", 100.0, 110.0)


# -- the NDRC barometer, on worked examples ----------------------------------------------


def region(energy: float, gdp: float, cap: float = 1030.0, renewable: float = 0.0):
    # last year, same period: 1000 tce for GDP 100, intensity 10.0
    # targets for the period: basic −3%, incentive −4%
    return RegionPeriod(
        region="140802",
        at=cst(2026, 7, 1),
        energy_tce=energy,
        gdp=gdp,
        last_year_energy_tce=1000.0,
        last_year_gdp=100.0,
        basic_target_cut=0.03,
        incentive_target_cut=0.04,
        prorated_cap_tce=cap,
        new_renewable_tce=renewable,
    )


def test_intensity_that_rose_is_red_and_a_total_over_by_under_10_percent_is_yellow():
    # 1060 / 104 = 10.192 against 10.0: rose 1.92% -> red (level 1)
    # total: (1060 − 1030) / 1030 = +2.91% over the pro-rated cap, ≤ 10% -> yellow
    result = by_rule(evaluate_barometer(region(1060.0, 104.0), BarometerConfig()))
    intensity, total = result[INTENSITY_RULE], result[TOTAL_RULE]
    assert intensity.level == "red"
    assert intensity.severity is Severity.CRITICAL
    assert intensity.value == pytest.approx(-0.01923, abs=1e-5)
    assert total.level == "yellow"
    assert total.severity is Severity.WARNING
    assert total.value == pytest.approx(30 / 1030)


def test_intensity_that_fell_short_of_the_basic_target_is_yellow_and_a_total_within_is_green():
    # 1020 / 104 = 9.8077: fell 1.92%, less than the 3% basic target -> yellow (level 2)
    # total: 1020 < 1030 -> green
    result = by_rule(evaluate_barometer(region(1020.0, 104.0), BarometerConfig()))
    assert result[INTENSITY_RULE].level == "yellow"
    assert result[INTENSITY_RULE].severity is Severity.WARNING
    assert result[INTENSITY_RULE].threshold == 0.03
    assert result[TOTAL_RULE].level == "green"
    assert result[TOTAL_RULE].severity is None


def test_meeting_the_incentive_target_exempts_the_total_even_far_over_the_cap():
    # 990 / 105 = 9.4286: fell 5.71% ≥ 4% incentive -> green, and the total is exempt,
    # though (990 − 900) / 900 = +10% over would otherwise be yellow
    result = by_rule(evaluate_barometer(region(990.0, 105.0, cap=900.0), BarometerConfig()))
    assert result[INTENSITY_RULE].level == "green"
    total = result[TOTAL_RULE]
    assert (total.level, total.severity, total.threshold) == ("exempt", None, None)


def test_a_total_over_by_more_than_10_percent_is_red_unless_new_renewables_bring_it_under():
    # 1000 / 103.5 = 9.6618: fell 3.38% -> green, but short of the 4% incentive
    # total: (1000 − 900) / 900 = +11.1% -> red; exactly +10% (990) is still yellow
    result = by_rule(evaluate_barometer(region(1000.0, 103.5, cap=900.0), BarometerConfig()))
    assert result[INTENSITY_RULE].level == "green"
    assert (result[TOTAL_RULE].level, result[TOTAL_RULE].severity) == ("red", Severity.CRITICAL)
    boundary = evaluate_barometer(region(1100.0, 114.0, cap=1000.0), BarometerConfig())
    # 1100 / 114 = 9.649: fell 3.51%; total (1100 − 1000) / 1000 = exactly 10% -> yellow
    assert by_rule(boundary)[TOTAL_RULE].level == "yellow"
    # 100 tce of new renewable electricity is not counted: 900 against 900 -> green
    green = evaluate_barometer(region(1000.0, 103.5, cap=900.0, renewable=100.0), BarometerConfig())
    assert by_rule(green)[TOTAL_RULE].level == "green"


def test_flat_intensity_neither_rose_nor_fell_and_is_yellow():
    # 1040 / 104 = 10.0 = last year's: not "rose" (red), not on track either -> yellow
    result = by_rule(evaluate_barometer(region(1040.0, 104.0), BarometerConfig()))
    assert result[INTENSITY_RULE].value == 0.0
    assert result[INTENSITY_RULE].level == "yellow"


def test_a_local_completion_scheme_grades_rates_in_its_bands():
    green = Level("green", "绿", None)
    yellow = Level("yellow", "黄", Severity.NOTICE)
    orange = Level("orange", "橙", Severity.WARNING)
    red = Level("red", "红", Severity.CRITICAL)
    # ≥100% green, 90–100% yellow, 50–90% orange, ≤50% red
    scheme = CompletionScheme(
        (Band(1.0, green), Band(0.9, yellow), Band(0.5, orange, inclusive=False), Band(-1, red))
    )
    cases = {1.2: "green", 1.0: "green", 0.95: "yellow", 0.9: "yellow", 0.51: "orange"}
    cases |= {0.5: "red", 0.1: "red"}
    for rate, name in cases.items():
        assert scheme.grade(rate)[0].name == name, rate
    condition = evaluate_completion("140802", cst(2026, 7, 1), 0.6, scheme, "completion.local")
    assert (condition.severity, condition.threshold, condition.level) == (
        Severity.WARNING,
        0.9,
        "orange",
    )
    with pytest.raises(ValueError, match="best"):
        CompletionScheme((Band(0.5, red), Band(1.0, green)))


# -- data quality -------------------------------------------------------------------------

DQ = DataQualityConfig()


def test_a_day_with_86_of_96_uploads_is_incomplete_and_one_with_87_is_not():
    end = cst(2026, 3, 3)
    short = evaluate_completeness("M1", date(2026, 3, 2), 96, 86, end, DQ, UNIT)
    assert short.rule_id == "data-quality.completeness"
    assert short.severity is Severity.WARNING
    assert short.value == pytest.approx(86 / 96)  # 89.6%
    assert (short.threshold, short.at, short.higher_is_worse) == (0.9, end, False)
    assert evaluate_completeness("M1", date(2026, 3, 2), 96, 87, end, DQ).severity is None
    assert evaluate_completeness("M1", date(2026, 3, 2), 0, 0, end, DQ) is None


def test_daily_figures_6_percent_off_the_monthly_figure_fire_and_5_percent_does_not():
    at = cst(2026, 4, 3)
    off = evaluate_monthly_deviation("M1", date(2026, 3, 1), 1060.0, 1000.0, at, DQ)
    assert (off.severity, off.value, off.threshold) == (Severity.WARNING, 0.06, 0.05)
    within = evaluate_monthly_deviation("M1", date(2026, 3, 1), 1050.0, 1000.0, at, DQ)
    assert within.severity is None
    assert evaluate_monthly_deviation("M1", date(2026, 3, 1), 10.0, None, at, DQ) is None
    zero = evaluate_monthly_deviation("M1", date(2026, 3, 1), 10.0, 0.0, at, DQ)
    assert zero.severity is Severity.WARNING


CALENDAR = ChinaCalendar.load()


def silence_after(last_start: datetime) -> DeviceSilence:
    tracker = DeviceSilence(DeviceSilenceConfig(), CALENDAR)
    tracker.heard("M1", last_start, 900, UNIT)
    return tracker


def test_a_gap_of_more_than_4_quarters_fires_and_one_of_3_does_not():
    # last data 17:00–17:15 on Friday 6 March 2026; at 18:30, 17:15..18:30 is 5 quarters
    tracker = silence_after(cst(2026, 3, 6, 17))
    gap = by_rule(tracker.evaluate(cst(2026, 3, 6, 18, 30)))[GAP_RULE]
    assert (gap.severity, gap.value, gap.threshold) == (Severity.NOTICE, 5.0, 4.0)
    assert gap.at == cst(2026, 3, 6, 18, 30)
    assert by_rule(tracker.evaluate(cst(2026, 3, 6, 18)))[GAP_RULE].severity is None  # 3


def test_a_gap_resolves_when_the_data_resumed_however_late_the_evaluator_looks():
    # silent after 17:00-17:15; the gap is reported at 18:30; data resumes at 19:00.
    # One evaluator looks at 19:15, one that fell behind only at 23:00, with more data
    # heard since: both date the end of the gap 19:00, with the same message.
    def resolved_when_looked_at(looked: datetime, heard_until: datetime) -> Condition:
        tracker = silence_after(cst(2026, 3, 6, 17))
        assert by_rule(tracker.evaluate(cst(2026, 3, 6, 18, 30)))[GAP_RULE].met
        start = cst(2026, 3, 6, 19)
        while start <= heard_until:
            tracker.heard("M1", start, 900, UNIT)
            start += timedelta(minutes=15)
        restored = DeviceSilence.restore(DeviceSilenceConfig(), CALENDAR, tracker.snapshot())
        return by_rule(restored.evaluate(looked))[GAP_RULE]

    prompt = resolved_when_looked_at(cst(2026, 3, 6, 19, 15), cst(2026, 3, 6, 19))
    behind = resolved_when_looked_at(cst(2026, 3, 6, 23), cst(2026, 3, 6, 22, 45))
    assert prompt.severity is None
    assert prompt == behind
    assert (prompt.at, prompt.value) == (cst(2026, 3, 6, 19), 0.0)
    assert "数据恢复" in prompt.message


def test_a_caller_that_hears_only_the_newest_period_passes_the_first_after_the_hole():
    # the evaluator learns each meter's newest stored period; data from 19:00 to 22:45 was
    # stored between two of its looks, so it passes 19:00, which it looked up, as first_after
    tracker = silence_after(cst(2026, 3, 6, 17))
    assert by_rule(tracker.evaluate(cst(2026, 3, 6, 18, 30)))[GAP_RULE].met
    newest = cst(2026, 3, 6, 22, 45)
    assert tracker.expected_next("M1", newest) == cst(2026, 3, 6, 17, 15)
    assert tracker.expected_next("M1", cst(2026, 3, 6, 17, 30)) is None  # no hole worth it
    tracker.heard("M1", newest, 900, UNIT, first_after=cst(2026, 3, 6, 19))
    gap = by_rule(tracker.evaluate(cst(2026, 3, 6, 23)))[GAP_RULE]
    assert (gap.severity, gap.at) == (None, cst(2026, 3, 6, 19))
    assert "2026-03-06T11:00:00+00:00" in gap.message  # resumed 19:00 China time


def test_on_the_data_clock_a_hole_found_after_the_data_resumed_still_fires_then_resolves():
    # EL01 was heard to 09:00-09:15, then nothing until 11:00. An evaluator that kept pace
    # saw the gap cross the line at 10:30 and end at 11:00; one that fell behind first looks
    # at 12:00, when 11:00-11:45 is stored: it tells the same two things, in order.
    def told(looks: list[tuple[datetime, datetime | None]]) -> list[Condition]:
        tracker = DeviceSilence(DeviceSilenceConfig(), ChinaCalendar.load())
        tracker.heard("EL01", cst(2026, 3, 9, 9), 900, UNIT, feed="readings")
        said = []
        for mark, newest in looks:
            if newest is not None:
                tracker.heard(
                    "EL01", newest, 900, UNIT, "readings", first_after=cst(2026, 3, 9, 11)
                )
            said += [
                c
                for c in tracker.evaluate(
                    cst(2026, 11, 20), data_clock=True, passed={"readings": mark}
                )
                if c.rule_id == GAP_RULE
            ]
        return said

    kept_pace = told(
        [(cst(2026, 3, 9, 10, 30), None), (cst(2026, 3, 9, 11, 15), cst(2026, 3, 9, 11))]
    )
    behind = told([(cst(2026, 3, 9, 12), cst(2026, 3, 9, 11, 45))])
    for said in (kept_pace, behind):
        changes = [(c.at, c.met) for c in said]
        assert (cst(2026, 3, 9, 10, 30), True) in changes
        assert changes[-1] == (cst(2026, 3, 9, 11), False)
    assert [c for c in kept_pace if c.met] == [c for c in behind if c.met]
    assert kept_pace[-1] == behind[-1]
    # a hole whose crossing the watermark has not reached is not reported yet
    early = told([(cst(2026, 3, 9, 10, 15), cst(2026, 3, 9, 11))])
    assert not [c for c in early if c.met]


def test_a_resumption_heard_late_is_dated_no_earlier_than_the_gap_was_last_reported():
    # the gap is still reported at 20:00, then data for 19:00 arrives (late): the
    # resolution is dated 20:00, or the lifecycle would take it for old news
    tracker = silence_after(cst(2026, 3, 6, 17))
    assert by_rule(tracker.evaluate(cst(2026, 3, 6, 20)))[GAP_RULE].met
    tracker.heard("M1", cst(2026, 3, 6, 19), 900, UNIT)
    gap = by_rule(tracker.evaluate(cst(2026, 3, 6, 20, 15)))[GAP_RULE]
    assert (gap.severity, gap.at) == (None, cst(2026, 3, 6, 20))


def test_a_gap_never_reported_keeps_being_judged_at_the_time_given():
    tracker = silence_after(cst(2026, 3, 6, 17))
    tracker.heard("M1", cst(2026, 3, 6, 19), 900, UNIT)  # the hole was never looked at
    gap = by_rule(tracker.evaluate(cst(2026, 3, 6, 19, 15)))[GAP_RULE]
    assert (gap.severity, gap.at) == (None, cst(2026, 3, 6, 19, 15))


def test_a_device_offline_since_friday_escalates_to_critical_on_thursday():
    # working days elapsed since Friday: Mon 1, Tue 2, Wed 3 (the last allowed), Thu 4
    tracker = silence_after(cst(2026, 3, 6, 17))
    expected = {9: None, 10: Severity.NOTICE, 11: Severity.WARNING, 12: Severity.CRITICAL}
    for day, severity in expected.items():
        offline = by_rule(tracker.evaluate(cst(2026, 3, day, 10)))[OFFLINE_RULE]
        assert offline.severity is severity, day
        assert offline.value == day - 8


def test_holidays_do_not_count_toward_the_three_working_days_and_make_up_days_do():
    # silent from Tue 30 Sep 2025; 1–8 Oct are holidays, Thu 9 and Fri 10 work, and so
    # does Sat 11 Oct (调休), making 3; Mon 13 Oct is the 4th -> critical
    tracker = silence_after(cst(2025, 9, 30, 18))
    assert by_rule(tracker.evaluate(cst(2025, 10, 8, 12)))[OFFLINE_RULE].severity is None
    assert by_rule(tracker.evaluate(cst(2025, 10, 11, 12)))[OFFLINE_RULE].severity is (
        Severity.WARNING
    )
    assert by_rule(tracker.evaluate(cst(2025, 10, 13, 12)))[OFFLINE_RULE].severity is (
        Severity.CRITICAL
    )


def test_late_data_for_an_older_period_does_not_move_the_last_heard_and_state_round_trips():
    tracker = silence_after(cst(2026, 3, 6, 17))
    tracker.heard("M1", cst(2026, 3, 6, 9), 900, UNIT)
    now = cst(2026, 3, 6, 18, 30)
    assert by_rule(tracker.evaluate(now))[GAP_RULE].value == 5.0
    snapshot = json.loads(json.dumps(tracker.snapshot()))
    restored = DeviceSilence.restore(DeviceSilenceConfig(), CALENDAR, snapshot)
    assert restored.snapshot() == tracker.snapshot()
    assert restored.evaluate(now) == tracker.evaluate(now)
    tracker.forget("M1")
    assert tracker.evaluate(now) == []


# -- heavy-pollution response -------------------------------------------------------------

CLINKER_B = ListedUnit(
    code=UNIT,
    city="运城",
    grade="B",
    required_cuts={EmergencyLevel.ORANGE: 0.20, EmergencyLevel.RED: 1.0},  # −20%, stop
)


def hour(start: datetime, energy: float) -> HourlyEnergy:
    return HourlyEnergy(UNIT, start, energy, baseline=10_000.0)


def orange_from_8am() -> HeavyPollutionResponse:
    response = HeavyPollutionResponse(HeavyPollutionConfig())
    response.declare("运城", EmergencyLevel.ORANGE, cst(2026, 1, 10, 8), timedelta(hours=12))
    return response


def test_a_grade_b_unit_cutting_10_percent_at_orange_after_the_lead_time_fires():
    # orange from 08:00, 12 h lead: binding from 20:00; 21:00–22:00 used 9,000 of 10,000
    condition = orange_from_8am().evaluate(CLINKER_B, hour(cst(2026, 1, 10, 21), 9_000.0))
    assert condition.rule_id == "heavy-pollution.response"
    assert condition.severity is Severity.WARNING
    # the line is the required 20% less the 5-point tolerance for the baseline's noise
    assert (condition.value, condition.threshold) == (pytest.approx(0.10), pytest.approx(0.15))
    assert (condition.at, condition.level) == (cst(2026, 1, 10, 22), "orange")


def test_a_unit_that_cut_enough_or_is_still_in_its_lead_time_does_not_fire():
    response = orange_from_8am()
    assert response.evaluate(CLINKER_B, hour(cst(2026, 1, 10, 21), 7_500.0)).severity is None
    ramping = response.evaluate(CLINKER_B, hour(cst(2026, 1, 10, 19), 10_000.0))
    assert (ramping.severity, ramping.threshold) == (None, None)  # 19:00 < 20:00


def test_a_cut_within_the_tolerance_of_the_requirement_is_not_short():
    response = orange_from_8am()
    near = response.evaluate(CLINKER_B, hour(cst(2026, 1, 10, 21), 8_300.0))  # 17% of 20%
    assert (near.severity, near.value) == (None, pytest.approx(0.17))
    far = response.evaluate(CLINKER_B, hour(cst(2026, 1, 10, 21), 8_600.0))  # 14% of 20%
    assert far.severity is Severity.WARNING


def test_a_stop_at_red_is_verified_as_a_fall_of_more_than_75_percent():
    response = orange_from_8am()
    response.declare("运城", EmergencyLevel.RED, cst(2026, 1, 11, 8), timedelta(hours=12))
    # during red's ramp-down the orange cut still applies: 20% at 10:00 on the 11th
    ramp = response.evaluate(CLINKER_B, hour(cst(2026, 1, 11, 10), 7_000.0))
    assert (ramp.threshold, ramp.severity) == (pytest.approx(0.15), None)
    # from 20:00 a stop is required: 3,000 of 10,000 is a 70% fall, not a stop
    short = response.evaluate(CLINKER_B, hour(cst(2026, 1, 11, 21), 3_000.0))
    assert (short.severity, short.threshold) == (Severity.CRITICAL, 0.75)
    stopped = response.evaluate(CLINKER_B, hour(cst(2026, 1, 11, 21), 2_000.0))
    assert stopped.severity is None


def test_lifting_the_alert_removes_the_line_and_declarations_survive_a_restart():
    response = orange_from_8am()
    response.lift("运城", cst(2026, 1, 12, 8))
    after = response.evaluate(CLINKER_B, hour(cst(2026, 1, 12, 9), 10_000.0))
    assert (after.severity, after.threshold) == (None, None)
    before = hour(cst(2026, 1, 11, 9), 10_000.0)
    snapshot = json.loads(json.dumps(response.snapshot()))
    restored = HeavyPollutionResponse.restore(HeavyPollutionConfig(), snapshot)
    assert restored.snapshot() == response.snapshot()
    assert restored.evaluate(CLINKER_B, before) == response.evaluate(CLINKER_B, before)
    assert restored.evaluate(CLINKER_B, before).severity is Severity.WARNING


def test_on_the_data_clock_each_feed_is_judged_at_its_own_progress_and_gaps_are_not():
    tracker = DeviceSilence(DeviceSilenceConfig(), ChinaCalendar.load())
    # most meters have reached Monday 9 March (one partition lags to Sunday 8th); one meter
    # stopped on Tuesday 3 March. The VOC feed has only reached Friday 6 March 12:00.
    for meter in ("EL01", "EL02", "EL03"):
        tracker.heard(meter, cst(2026, 3, 9, 10), 900, UNIT, feed="readings")
    tracker.heard("EL04", cst(2026, 3, 8, 10), 900, UNIT, feed="readings")
    tracker.heard("EL05", cst(2026, 3, 3, 12), 900, UNIT, feed="readings")
    tracker.heard("VOC1", cst(2026, 3, 6, 12), 60, UNIT, feed="voc")
    judged = tracker.evaluate(cst(2026, 11, 20), data_clock=True)
    assert {c.rule_id for c in judged} == {"data-quality.offline"}
    offline = {c.subject for c in judged if c.met}
    # judged at the lower quartile, Sunday 8th: the lagging partition is not silent, the
    # stopped meter is (Wed, Thu, Fri: more than 2 working days), the VOC feed is current
    assert offline == {"EL05"}
    on_the_wall = tracker.evaluate(cst(2026, 11, 20))
    assert {c.subject for c in on_the_wall if c.met} == {f"EL0{i}" for i in range(1, 6)} | {"VOC1"}


def test_on_the_data_clock_gaps_are_judged_at_the_watermark_of_the_feed_given_one():
    tracker = DeviceSilence(DeviceSilenceConfig(), ChinaCalendar.load())
    # the readings stream's watermark is 9 March 11:15: EL01 was heard up to it, EL02 stopped
    # after its 09:30 interval (6 intervals missing by 11:15, more than 4), EL03 after 10:15
    # (3 missing). The VOC feed has no watermark: its monitor is judged for being offline only.
    tracker.heard("EL01", cst(2026, 3, 9, 11), 900, UNIT, feed="readings")
    tracker.heard("EL02", cst(2026, 3, 9, 9, 30), 900, UNIT, feed="readings")
    tracker.heard("EL03", cst(2026, 3, 9, 10, 15), 900, UNIT, feed="readings")
    tracker.heard("VOC1", cst(2026, 3, 9, 8), 60, UNIT, feed="voc")
    mark = cst(2026, 3, 9, 11, 15)
    judged = tracker.evaluate(cst(2026, 11, 20), data_clock=True, passed={"readings": mark})
    gaps = {c.subject: c for c in judged if c.rule_id == "data-quality.gap"}
    assert set(gaps) == {"EL01", "EL02", "EL03"}
    assert {s for s, c in gaps.items() if c.met} == {"EL02"}
    # dated when it crossed the line (5 missing at 11:00), not when it was looked at, so an
    # evaluator that looks later (it fell behind) tells the same story
    assert (gaps["EL02"].value, gaps["EL02"].at) == (5.0, cst(2026, 3, 9, 11))
    later = tracker.evaluate(
        cst(2026, 11, 20), data_clock=True, passed={"readings": cst(2026, 3, 9, 12)}
    )
    assert [c for c in later if c.subject == "EL02" and c.rule_id == GAP_RULE] == [gaps["EL02"]]
    # without a watermark there is no gap verdict at all
    unknown = tracker.evaluate(cst(2026, 11, 20), data_clock=True)
    assert not [c for c in unknown if c.rule_id == "data-quality.gap"]
