-- Reference data for the dashboards (issue 7): what the enterprise register and the city plans
-- say, which the stream never writes: names of cities, counties and units, each unit's county
-- and industry, energy budgets, product energy limits and benchmarks, meters, VOC monitors'
-- limits, and the plans' targets. The register and plans (YAML under plans/) stay the source;
-- `energywatch register sync` (storage/reference_data.py) replaces these tables from them in
-- one transaction, so they are never half-synced. Nothing here is written by the stream.
--
-- Subjects are spelled as in energy_rollups: a city by its plan id (yuncheng), a county by its
-- GB/T 2260 division code, a unit by its unified social credit code, an industry by the
-- register's name. Alerts name regions by division code: ref_cities.division joins them.

CREATE TABLE ref_cities (
    city          text    PRIMARY KEY,
    division      text    NOT NULL UNIQUE,
    name_zh       text    NOT NULL,
    province_zh   text    NOT NULL,
    plan_revision integer NOT NULL,
    first_year    integer NOT NULL,  -- the plan period
    last_year     integer NOT NULL
);

CREATE TABLE ref_counties (
    county   text PRIMARY KEY,  -- division code
    city     text NOT NULL,
    name_zh  text               -- NULL: a county the register names but no plan lists
);
CREATE INDEX ref_counties_city_idx ON ref_counties (city);

CREATE TABLE ref_units (
    enterprise_code text    PRIMARY KEY,
    name            text    NOT NULL,
    city            text    NOT NULL,
    county          text    NOT NULL,
    industry        text    NOT NULL,
    two_high        boolean NOT NULL,  -- on the city's "两高" project list
    emergency_grade text               -- heavy-pollution performance grade A-D
);
CREATE INDEX ref_units_county_idx ON ref_units (county);
CREATE INDEX ref_units_industry_idx ON ref_units (industry);

-- A unit's annual energy budget (用能预算), tce of the controlled total.
CREATE TABLE ref_unit_budgets (
    enterprise_code text             NOT NULL,
    year            integer          NOT NULL,
    budget_tce      double precision NOT NULL CHECK (budget_tce > 0),
    source          text,
    PRIMARY KEY (enterprise_code, year)
);

-- The energy levels each unit's products are judged against: the register's, or for a product
-- it lists without limits, its city plan's (the alert evaluator's rule). level: limit (限额),
-- benchmark (标杆), baseline (基准); value_unit: kgce/t (product_unit_energy.kgce_per_t),
-- kgce/MWh (numerically gce/kWh, product_unit_energy.gce_per_kwh) or kWh/t.
CREATE TABLE ref_product_limits (
    enterprise_code text             NOT NULL,
    product_code    text             NOT NULL,
    product_name_zh text,
    product_unit    text             NOT NULL,  -- t or MWh
    route           text,
    level           text             NOT NULL CHECK (level IN ('limit', 'benchmark', 'baseline')),
    scope           text             NOT NULL,  -- national or a city id
    value           double precision NOT NULL,
    value_unit      text             NOT NULL,
    source          text             NOT NULL,
    PRIMARY KEY (enterprise_code, product_code, level, scope)
);

CREATE TABLE ref_meters (
    meter_id             text PRIMARY KEY,
    enterprise_code      text NOT NULL,
    energy_type          text NOT NULL,
    excluded_from_totals text  -- renewable, feedstock, listed_project
);
CREATE INDEX ref_meters_enterprise_idx ON ref_meters (enterprise_code);

CREATE TABLE ref_voc_limits (
    monitor_id       text             NOT NULL,
    pollutant        text             NOT NULL,  -- HJ 212 code, e.g. a24088
    enterprise_code  text             NOT NULL,
    standard         text             NOT NULL,
    hourly_avg_mg_m3 double precision NOT NULL,
    single_mg_m3     double precision,
    PRIMARY KEY (monitor_id, pollutant)
);

-- The plans' targets per city and county: the intensity cuts (percent, basic and incentive)
-- for the plan period or one year, and total-consumption caps (tce) per year. A target "as
-- assigned by the province" has no value.
CREATE TABLE ref_plan_targets (
    region_kind          text    NOT NULL CHECK (region_kind IN ('city', 'county')),
    region               text    NOT NULL,  -- a city id or a county division code
    division             text    NOT NULL,
    indicator            text    NOT NULL
        CHECK (indicator IN ('intensity_basic_pct', 'intensity_incentive_pct', 'consumption_cap_tce')),
    first_year           integer NOT NULL,
    last_year            integer NOT NULL,
    value                double precision,
    assigned_by_province boolean NOT NULL,
    source               text    NOT NULL,
    PRIMARY KEY (region_kind, region, indicator, first_year, last_year)
);

-- When the tables were last synced, and from what.
CREATE TABLE ref_sync (
    id            boolean     PRIMARY KEY DEFAULT true CHECK (id),
    register_name text        NOT NULL,
    plans         text        NOT NULL,  -- city id:revision, ...
    synced_at     timestamptz NOT NULL
);

-- The coarsest rollup windows that together cover the quarter hours starting in [from, to):
-- whole China-local months as '1mo' rows, the whole days left as '1d', the whole hours left as
-- '1h', the rest as '15m'. At most seven spans; summing a subject's rollups over them equals
-- summing its quarter hours, reading a few dozen rows instead of thousands (a year is 11
-- months and some days). Rows of a span are those whose period_start is in [span_start,
-- span_end). Meters have only '1d' and '1mo' rollups: do not use this for them.
CREATE FUNCTION rollup_cover(range_from timestamptz, range_to timestamptz)
RETURNS TABLE (window_size text, span_start timestamptz, span_end timestamptz)
LANGUAGE plpgsql STABLE STRICT AS $$
DECLARE
    q0 timestamptz := date_bin('15 minutes', range_from - interval '1 microsecond',
                               timestamptz '2000-01-01 00:00+00') + interval '15 minutes';
    q1 timestamptz := date_bin('15 minutes', range_to - interval '1 microsecond',
                               timestamptz '2000-01-01 00:00+00') + interval '15 minutes';
    h0 timestamptz;
    h1 timestamptz;
    d0 timestamptz;
    d1 timestamptz;
    m0 timestamptz;
    m1 timestamptz;
BEGIN
    IF q1 <= q0 THEN
        RETURN;
    END IF;
    -- China Standard Time is UTC+8 all year: hours align in UTC, days and months in CST
    h0 := date_trunc('hour', q0 + interval '59 minutes');
    h1 := date_trunc('hour', q1);
    IF h1 <= h0 THEN
        RETURN QUERY SELECT '15m'::text, q0, q1;
        RETURN;
    END IF;
    d0 := date_trunc('day', h0 + interval '23 hours', 'Asia/Shanghai');
    d1 := date_trunc('day', h1, 'Asia/Shanghai');
    IF d1 <= d0 THEN
        d0 := h1;
        d1 := h1;
    END IF;
    m0 := date_trunc('month', d0, 'Asia/Shanghai');
    IF m0 < d0 THEN
        m0 := (date_trunc('month', d0, 'Asia/Shanghai') AT TIME ZONE 'Asia/Shanghai'
               + interval '1 month') AT TIME ZONE 'Asia/Shanghai';
    END IF;
    m1 := date_trunc('month', d1, 'Asia/Shanghai');
    IF m1 <= m0 THEN
        m0 := d1;
        m1 := d1;
    END IF;
    RETURN QUERY
    SELECT s.w, s.a, s.b
    FROM (VALUES ('15m', q0, h0), ('1h', h0, d0), ('1d', d0, m0), ('1mo', m0, m1),
                 ('1d', m1, d1), ('1h', d1, h1), ('15m', h1, q1)) AS s (w, a, b)
    WHERE s.a < s.b;
END
$$;

-- The rollup window a time series over [from, to) reads: quarter hours up to two days, hours
-- up to 31 days, days up to two years, months beyond (at most about 750 points per series).
CREATE FUNCTION rollup_window(range_from timestamptz, range_to timestamptz)
RETURNS text
LANGUAGE sql IMMUTABLE STRICT AS $$
    SELECT CASE
        WHEN range_to - range_from <= interval '2 days' THEN '15m'
        WHEN range_to - range_from <= interval '31 days' THEN '1h'
        WHEN range_to - range_from <= interval '731 days' THEN '1d'
        ELSE '1mo'
    END
$$;
