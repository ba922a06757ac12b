-- Meters that report cumulative counters: a reading may carry the interval's consumption, the
-- counter at the end of the interval, or both. Physical quantities are kept as sent so history
-- can be recomputed (issue 5 derives consumption from counters, handling resets and rollovers).
ALTER TABLE meter_readings ALTER COLUMN physical_quantity DROP NOT NULL;
ALTER TABLE meter_readings ADD COLUMN physical_counter double precision;
ALTER TABLE meter_readings ADD CONSTRAINT meter_readings_has_a_value
    CHECK (physical_quantity IS NOT NULL OR physical_counter IS NOT NULL);
