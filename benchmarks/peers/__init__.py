"""The peers ``energywatch bench side-by-side`` measures the worker against: the same job
(readings -> per-unit 15-minute and daily tce rollups in TimescaleDB) in Quix Streams and in a
plain kafka-python consumer, and a bare Faust agent as the framework's own ceiling."""
