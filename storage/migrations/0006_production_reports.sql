-- Production reports (issue 5): what units upload beside their meters (contracts/production.py),
-- one table per kind, one row per natural key. A report sent again with a different value
-- replaces the stored one and bumps ``revision``; the same value again, or a Kafka record
-- redelivered (its offset at or before the one stored from the same topic partition),
-- changes nothing. ``received_at`` is when the key was first received, ``revised_at`` when
-- its value was last replaced. Reported figures are stored as sent (double precision).
-- ``period_start`` is the China-local start of the day or month, in UTC, like energy_rollups.

CREATE TABLE product_output_reports (
    enterprise_code  text             NOT NULL,
    product_code     text             NOT NULL,
    period           text             NOT NULL CHECK (period IN ('day', 'month')),
    period_start     timestamptz      NOT NULL,
    output_t         double precision CHECK (output_t >= 0),
    output_mwh       double precision CHECK (output_mwh >= 0),  -- power plants
    revision         integer          NOT NULL DEFAULT 0,
    received_at      timestamptz      NOT NULL,
    revised_at       timestamptz,
    source_topic     text,
    source_partition integer,
    source_offset    bigint,
    PRIMARY KEY (enterprise_code, product_code, period, period_start),
    CHECK ((output_t IS NULL) <> (output_mwh IS NULL))
);

-- A unit's own daily or monthly figure per energy type, in the unit its meters report
-- (kWh, m3, t, GJ: the same as energy_rollups.physical_unit).
CREATE TABLE energy_total_reports (
    enterprise_code  text             NOT NULL,
    energy_type      text             NOT NULL,
    period           text             NOT NULL CHECK (period IN ('day', 'month')),
    period_start     timestamptz      NOT NULL,
    quantity         double precision NOT NULL CHECK (quantity >= 0),
    physical_unit    text             NOT NULL,
    revision         integer          NOT NULL DEFAULT 0,
    received_at      timestamptz      NOT NULL,
    revised_at       timestamptz,
    source_topic     text,
    source_partition integer,
    source_offset    bigint,
    PRIMARY KEY (enterprise_code, energy_type, period, period_start)
);

CREATE TABLE output_value_reports (
    enterprise_code  text             NOT NULL,
    period           text             NOT NULL CHECK (period IN ('day', 'month')),
    period_start     timestamptz      NOT NULL,
    output_value_cny double precision NOT NULL CHECK (output_value_cny >= 0),
    revision         integer          NOT NULL DEFAULT 0,
    received_at      timestamptz      NOT NULL,
    revised_at       timestamptz,
    source_topic     text,
    source_partition integer,
    source_offset    bigint,
    PRIMARY KEY (enterprise_code, period, period_start)
);

CREATE TABLE value_added_reports (
    enterprise_code  text             NOT NULL,
    period           text             NOT NULL CHECK (period IN ('day', 'month')),
    period_start     timestamptz      NOT NULL,
    value_added_cny  double precision NOT NULL,  -- may be negative: a loss-making month
    revision         integer          NOT NULL DEFAULT 0,
    received_at      timestamptz      NOT NULL,
    revised_at       timestamptz,
    source_topic     text,
    source_partition integer,
    source_offset    bigint,
    PRIMARY KEY (enterprise_code, period, period_start)
);

-- Product unit energy (单位产品综合能耗): the unit's controlled total (energy_rollups 'all',
-- tce_counted) over the day or month, per tonne of product or per unit of electricity.
--
--   kgce_per_t  = tce_counted × 1000 / output_t
--   gce_per_kwh = tce_counted × 10^6 g / (output_mwh × 1000 kWh) = tce_counted × 1000 / output_mwh
--                 (numerically the same as kgce per MWh; the plans quote power plants in gce/kWh)
--
-- A unit has one energy total, not one per product, so the whole unit's energy is put on a
-- product only when it is the unit's single product with output in that period
-- (basis 'single_product'). With two or more products made (output > 0) the figures are NULL
-- and basis is 'several_products': splitting the energy needs per-process metering the
-- stream does not have, and dividing the whole total by each product's output would overstate
-- every product against its limit. A product with zero output is 'no_output' (NULL, and not
-- counted as made); a period with no rollup row for the unit is 'no_energy' (NULL).
-- Monthly figures use the monthly product report and the '1mo' rollup (not summed days).
CREATE VIEW product_unit_energy AS
WITH products AS (
    SELECT p.enterprise_code, p.product_code, p.period, p.period_start, p.output_t,
           p.output_mwh, p.revision,
           count(*) FILTER (WHERE coalesce(p.output_t, p.output_mwh) > 0)
               OVER (PARTITION BY p.enterprise_code, p.period, p.period_start) AS products_made
    FROM product_output_reports p
)
SELECT p.enterprise_code, p.product_code, p.period, p.period_start, p.output_t, p.output_mwh,
       p.revision, p.products_made,
       r.tce_counted AS unit_tce_counted,
       CASE
           WHEN coalesce(p.output_t, p.output_mwh) = 0 THEN 'no_output'
           WHEN r.tce_counted IS NULL THEN 'no_energy'
           WHEN p.products_made > 1 THEN 'several_products'
           ELSE 'single_product'
       END AS basis,
       CASE WHEN p.products_made = 1 AND p.output_t > 0
            THEN r.tce_counted * 1000 / p.output_t::numeric END AS kgce_per_t,
       CASE WHEN p.products_made = 1 AND p.output_mwh > 0
            THEN r.tce_counted * 1000 / p.output_mwh::numeric END AS gce_per_kwh
FROM products p
LEFT JOIN energy_rollups r
    ON r.subject_kind = 'unit'
   AND r.subject = p.enterprise_code
   AND r.energy_type = 'all'
   AND r.window_size = CASE p.period WHEN 'day' THEN '1d' ELSE '1mo' END
   AND r.period_start = p.period_start;
