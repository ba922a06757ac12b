"""``energywatch plans validate``: every problem, with file, line, field path and a next step."""

from pathlib import Path

import yaml
from typer.testing import CliRunner

from energywatch.cli import app
from energywatch.plans_commands import Problem, check_paths
from plans.targets import CITY_PLANS_DIR

REPO = Path(__file__).resolve().parent.parent
DEMO_REGISTER = REPO / "plans/registers/demo.yaml"
EXAMPLE_STATISTICS = REPO / "plans/data/statistics/example-yuncheng.csv"


def _run(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["plans", "validate", *map(str, args)])
    return result.exit_code, result.output


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _at(problems: list[Problem], path: str) -> Problem:
    [problem] = [p for p in problems if p.path == path]
    return problem


def _line_of(lines: list[str], problem: Problem) -> str:
    """The text of the line a problem points at."""
    assert problem.line is not None, problem
    return lines[problem.line - 1]


def test_the_packaged_plans_statistics_and_demo_register_are_valid():
    code, output = _run(CITY_PLANS_DIR, EXAMPLE_STATISTICS, DEMO_REGISTER)
    assert code == 0, output
    for city in ("hanzhong", "huludao", "ziyang", "xianyang", "yuncheng"):
        assert f"city plan {city}, revision 1" in output
    assert "statistics, 10 rows, illustrative" in output
    assert "register, 9 enterprises" in output
    assert "7 file(s) valid" in output


def test_a_bad_plan_reports_each_problem_with_file_line_path_and_hint(tmp_path):
    text = (CITY_PLANS_DIR / "xianyang.yaml").read_text(encoding="utf-8")
    text = text.replace(
        "reduction_pct: 13.5\n      source: seeds/003, 二",
        "reduction_pct: -13.5\n      source: seeds/003, 二",
    )
    text = text.replace("  province_zh: 陕西省\n", "")
    text = text.replace("    share_pct: 16\n", "    share_pct: 16\n    shares: 1\n")
    bad = _write(tmp_path / "xianyang.yaml", text)
    lines = text.splitlines()

    report = check_paths([bad])
    assert len(report.problems) == 3
    negative = _at(report.problems, "targets.intensity.basic.reduction_pct")
    assert _line_of(lines, negative).strip() == "reduction_pct: -13.5"
    assert negative.hint == "fix the value: it is out of range"
    missing = _at(report.problems, "city.province_zh")
    assert _line_of(lines, missing) == "city:"  # the parent of the missing field
    assert missing.hint == "add the field"
    extra = _at(report.problems, "targets.non_fossil_share.shares")
    assert _line_of(lines, extra).strip() == "shares: 1"
    assert "remove the field" in extra.hint

    code, output = _run(bad)
    assert code == 1
    assert f"{bad}:{negative.line}  targets.intensity.basic.reduction_pct" in output
    assert "-> add the field" in output
    assert "3 problem(s) in 1 file(s)" in output
    assert "checks between fields" in output  # says that more may follow once these are fixed


def test_inconsistencies_point_at_their_own_lines(tmp_path):
    data = yaml.safe_load((CITY_PLANS_DIR / "ziyang.yaml").read_text(encoding="utf-8"))
    data["targets"]["intensity"]["counties"] = [
        {"county": "512002", "basic_reduction_pct": 14, "source": "x"},
        {"county": "512099", "basic_reduction_pct": 14, "source": "x"},
    ]
    data["targets"]["total_consumption"]["caps"] = [
        {"year": 2026, "cap_tce": 1.0e6, "source": "x"},
    ]
    bad = _write(
        tmp_path / "ziyang.yaml", yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    )
    lines = bad.read_text(encoding="utf-8").splitlines()

    report = check_paths([bad])
    assert {p.path for p in report.problems} == {
        "targets.intensity.counties[1].county",
        "targets.total_consumption.caps[0].year",
    }
    county = _at(report.problems, "targets.intensity.counties[1].county")
    assert "512099" in _line_of(lines, county)
    year = _at(report.problems, "targets.total_consumption.caps[0].year")
    assert "2026" in _line_of(lines, year)
    assert "outside 2021-2025" in year.message


def test_a_register_county_the_plans_do_not_know_is_a_problem(tmp_path):
    text = DEMO_REGISTER.read_text(encoding="utf-8").replace("county: '140824'", "county: '140899'")
    bad = _write(tmp_path / "register.yaml", text)
    report = check_paths([bad])
    problem = _at(report.problems, "enterprises[2].county")
    assert "140899 is not a county of yuncheng" in problem.message
    assert _line_of(text.splitlines(), problem) == "  county: '140899'"


def test_register_plan_fields_are_validated(tmp_path):
    text = DEMO_REGISTER.read_text(encoding="utf-8").replace(
        "  industry: steel\n",
        "  industry: steel\n  emergency_grade: E\n  two_high: maybe\n",
    )
    report = check_paths([_write(tmp_path / "register.yaml", text)])
    assert {p.path for p in report.problems} == {
        "enterprises[0].emergency_grade",
        "enterprises[0].two_high",
    }


def test_bad_statistics_are_reported_row_by_row(tmp_path):
    bad = _write(
        tmp_path / "gdp.csv",
        "region,year,period,gdp_100m_yuan,source,colour\n"
        "140800,2023,Q1,-1,x,\n"
        "140800,2023,Q5,10,x,\n"
        "000000,2023,annual,10,,\n",
    )
    report = check_paths([bad])
    assert sorted((p.line, p.path) for p in report.problems) == [
        (1, "header.colour"),
        (2, "rows[0].gdp_100m_yuan"),
        (3, "rows[1].period"),
        (4, "rows[2].region"),
        (4, "rows[2].source"),
    ]
    assert _at(report.problems, "rows[2].source").hint == "fill in the cell"


def test_an_example_csv_must_say_it_is_illustrative(tmp_path):
    text = EXAMPLE_STATISTICS.read_text(encoding="utf-8").replace("# status: illustrative\n", "")
    report = check_paths([_write(tmp_path / "example-x.csv", text)])
    [problem] = report.problems
    assert "illustrative" in problem.message
    assert problem.hint == "add the line `# status: illustrative` at the top"


def test_broken_yaml_names_its_line(tmp_path):
    bad = _write(tmp_path / "plan.yaml", "kind: city_plan\ntargets: [1, 2\nrevision: 1\n")
    [problem] = check_paths([bad]).problems
    assert problem.line == 3
    assert problem.message.startswith("not valid YAML")


def test_a_named_file_of_no_known_kind_is_a_problem_but_in_a_directory_it_is_skipped(tmp_path):
    other = _write(tmp_path / "other.yaml", "colour: blue\n")
    named = check_paths([other])
    assert [p.path for p in named.problems] == ["kind"]
    searched = check_paths([tmp_path])
    assert searched.problems == []
    assert searched.skipped == [other]


def test_regions_are_not_checked_silently_when_the_city_plans_are_broken(tmp_path):
    cities = tmp_path / "cities"
    cities.mkdir()
    _write(cities / "x.yaml", "kind: city_plan\nrevision: 0\n")
    code, output = _run("--cities", cities, DEMO_REGISTER)
    assert code == 1
    assert "regions not checked" in output


def test_a_missing_file_is_a_problem():
    code, output = _run("/no/such/file.yaml")
    assert code == 1
    assert "cannot read it" in output


def test_a_directory_without_plan_files_is_not_success(tmp_path):
    code, output = _run(tmp_path)
    assert code == 1
    assert "no plan files found" in output
