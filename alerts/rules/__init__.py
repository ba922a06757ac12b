"""Alert rules (pure): each judges plain inputs and returns ``Condition``s.

One module per concept: VOC limits, energy budgets, the year-end forecast, product energy
per tonne, the regional barometer, data quality, device silence and the heavy-pollution
response. None reads a clock, a file or the network; time comes in as UTC-aware datetimes.
``alerts.lifecycle`` turns conditions into alerts (pending, firing, resolved).
"""
