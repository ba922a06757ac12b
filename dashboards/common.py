# ruff: noqa: S608 - panel SQL for Grafana, composed from constants: nothing here runs it
"""What every dashboard shares: the datasources (by the uids provisioning gives them), the SQL
query type the foundation SDK lacks, the region/industry/unit variables and the SQL that
applies them, and small panel helpers.

**Variables.** ``city``, ``county`` (of the chosen cities), ``industry`` and ``unit`` (of the
chosen counties and industries) are PostgreSQL query variables over the reference tables
(migration 0008), multi-value with an All option whose custom value is ``'__all'``. Grafana
inserts a custom all value raw, so ``${county:sqlstring}`` is ``'__all'`` for All and
``'140802','140821'`` for a selection, and :func:`chosen` turns either into one condition: the
query stays short with 500 units, and it means "every unit of the chosen counties", not "the
units the list happened to hold when the dashboard loaded".
"""

from typing import Any, Final, Literal, Self

from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    DynamicConfigValue,
    ValueMap,
    ValueMappingResult,
    VariableOption,
    VariableRefresh,
    VariableSort,
)

TIMESCALEDB_UID: Final = "timescaledb"
PROMETHEUS_UID: Final = "prometheus"
POSTGRES_TYPE: Final = "grafana-postgresql-datasource"
TIMESCALEDB: Final = DataSourceRef(type_val=POSTGRES_TYPE, uid=TIMESCALEDB_UID)
PROMETHEUS: Final = DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)
#: the custom all value of every SQL variable (see the module docstring)
ALL_VALUE: Final = "'__all'"
TIMEZONE: Final = "Asia/Shanghai"
TAGS: Final = ["energywatch"]

SqlFormat = Literal["table", "time_series"]


class SqlQuery(cogvariants.Dataquery):
    """A PostgreSQL datasource target in code mode: raw SQL, as a table or a time series."""

    def __init__(
        self, ref_id: str = "", raw_sql: str = "", format_val: SqlFormat = "table"
    ) -> None:
        self.ref_id = ref_id
        self.raw_sql = raw_sql
        self.format_val = format_val

    def to_json(self) -> dict[str, object]:
        return {
            "datasource": TIMESCALEDB.to_json(),
            "editorMode": "code",
            "format": self.format_val,
            "rawQuery": True,
            "rawSql": self.raw_sql,
            "refId": self.ref_id,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        return cls(str(data.get("refId", "")), str(data["rawSql"]), data.get("format", "table"))


class Sql(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builds a :class:`SqlQuery`."""

    def __init__(self, raw_sql: str, ref_id: str = "A", format_val: SqlFormat = "table") -> None:
        self._internal = SqlQuery(ref_id, raw_sql.strip(), format_val)

    def build(self) -> SqlQuery:
        return self._internal


def register_sql_variant() -> None:
    """Let the SDK decode our SQL targets (``Dashboard.from_json``) instead of keeping them as
    unknown queries."""
    cogruntime.register_dataquery_variant(
        cogruntime.DataqueryConfig(identifier=POSTGRES_TYPE, from_json_hook=SqlQuery.from_json)
    )


# -- variables ----------------------------------------------------------------------------------


def chosen(variable: str, column: str) -> str:
    """The SQL condition "``column`` is one of the variable's values, or All is chosen"."""
    values = f"ARRAY[${{{variable}:sqlstring}}]::text[]"
    return f"('__all' = ANY({values}) OR {column} = ANY({values}))"


#: the units the region, industry and unit variables choose (a CTE body over ref_units)
CHOSEN_UNITS: Final = f"""SELECT u.* FROM ref_units u
    WHERE {chosen("city", "u.city")} AND {chosen("county", "u.county")}
      AND {chosen("industry", "u.industry")} AND {chosen("unit", "u.enterprise_code")}"""

#: the cities and counties the region variables choose, as rollup subjects (a CTE body)
CHOSEN_REGIONS: Final = f"""SELECT 'city' AS kind, c.city AS region, c.division, c.name_zh AS name
    FROM ref_cities c WHERE {chosen("city", "c.city")}
    UNION ALL
    SELECT 'county', k.county, k.county, coalesce(k.name_zh, k.county)
    FROM ref_counties k WHERE {chosen("city", "k.city")} AND {chosen("county", "k.county")}"""


def cover_rows(
    kind: str,
    range_from: str,
    range_to: str,
    *,
    energy_types: tuple[str, ...] | None = None,
    subjects: str = "NULL",
    only_stuck: bool = False,
    alias: str = "r",
) -> str:
    """A FROM item: the rollup rows of subject kind ``kind`` (SQL) over the coarsest windows
    that cover ``[range_from, range_to)``, as ``alias``: of ``energy_types`` (None: every
    one), of the subjects in the SQL array ``subjects`` (NULL: every one; see
    :func:`among`), only those with a stuck reading if ``only_stuck``.

    ``rollup_cover_rows`` (migration 0009) plans each span of ``rollup_cover`` with its own
    values, so each is read through the index that fits it."""
    types = "NULL::text[]" if energy_types is None else _text_array(energy_types)
    stuck = "true" if only_stuck else "false"
    return (
        f"rollup_cover_rows({kind}, {types}, {range_from}, {range_to}, {subjects}, {stuck}) {alias}"
    )


def _text_array(values: tuple[str, ...]) -> str:
    return "ARRAY[" + ", ".join(f"'{value}'" for value in values) + "]"


def every_chosen(*variables: str) -> str:
    """The SQL condition "each of these variables is at All": a constant once Grafana has
    interpolated the variables, which the planner folds away."""
    return " AND ".join(f"'__all' = ANY(ARRAY[${{{v}:sqlstring}}]::text[])" for v in variables)


#: no region, industry or unit narrows the units chosen
EVERY_UNIT: Final = every_chosen("city", "county", "industry", "unit")
#: no city or county narrows the regions chosen
EVERY_REGION: Final = every_chosen("city", "county")


def among(subjects: str, every: str = EVERY_UNIT) -> str:
    """The subjects of ``subjects`` (a one-column query) as a SQL array, or NULL ("every
    subject") when nothing narrows the choice (``every``): with a selection the rollups are
    read for the chosen subjects only (their primary key), with none for every subject
    without a list to check each row against."""
    return f"CASE WHEN {every} THEN NULL ELSE ARRAY({subjects}) END"


#: every energy type's sum, as the rollups' ``'all'`` (every type but water) plus water: the
#: same sums as ``energy_type <> 'all'`` from two series instead of one per energy type
ALL_AND_WATER: Final = ("all", "water")


def sql_variable(name: str, label: str, query: str, *, multi: bool = True) -> db.QueryVariable:
    variable = (
        db.QueryVariable(name)
        .label(label)
        .datasource(TIMESCALEDB)
        .query(query)
        .refresh(VariableRefresh.ON_DASHBOARD_LOAD)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(multi)
    )
    if multi:
        variable = variable.all_value(ALL_VALUE).current(
            VariableOption(selected=True, text=["All"], value=["$__all"])
        )
    return variable


def region_variables() -> list[db.QueryVariable]:
    """``city``, ``county`` (of the chosen cities) and ``industry``."""
    return [
        sql_variable(
            "city", "City 城市", "SELECT city AS __value, name_zh AS __text FROM ref_cities"
        ),
        sql_variable(
            "county",
            "County 区县",
            "SELECT county AS __value, coalesce(name_zh, county) AS __text FROM ref_counties "
            f"WHERE {chosen('city', 'city')}",
        ),
        sql_variable("industry", "Industry 行业", "SELECT DISTINCT industry FROM ref_units"),
    ]


def unit_variable(*, multi: bool = True) -> db.QueryVariable:
    """``unit``: the units of the chosen cities, counties and industries (by credit code,
    shown by name)."""
    query = (
        "SELECT enterprise_code AS __value, name AS __text FROM ref_units u "
        f"WHERE {chosen('city', 'u.city')} AND {chosen('county', 'u.county')} "
        f"AND {chosen('industry', 'u.industry')}"
    )
    return sql_variable("unit", "Unit 用能单位", query, multi=multi)


# -- panels -------------------------------------------------------------------------------------

#: warning levels as the barometer names them, coloured as they read
LEVEL_COLOURS: Final = {
    "red": "red",
    "orange": "orange",
    "yellow": "yellow",
    "green": "green",
    "exempt": "blue",
}


def level_mappings() -> list[Any]:
    return [
        ValueMap(
            options={
                name: ValueMappingResult(color=colour, index=i)
                for i, (name, colour) in enumerate(LEVEL_COLOURS.items())
            }
        )
    ]


def coloured_cells() -> list[DynamicConfigValue]:
    """Table cells shown on their mapped colour."""
    return [DynamicConfigValue(id_val="custom.cellOptions", value={"type": "color-background"})]


def dashboard(uid: str, title: str, description: str) -> db.Dashboard:
    """A dashboard with the house settings: China Standard Time, read-only from files."""
    return (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .timezone(TIMEZONE)
        .week_start("monday")
        .refresh("1m")
        .readonly()
    )
