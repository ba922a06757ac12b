"""Turning stored data into rule verdicts: ``RuleInputs`` reads what the pure rules
(``alerts.rules``) need from TimescaleDB (queries in ``storage.alert_inputs``) and returns
their ``Condition``s; ``RuleContext`` holds what they are judged against.

One module per concern: ``voc``, ``budgets``, ``products``, ``quality``, ``heavy``,
``barometer``; ``periods`` says which periods a change touches; ``context`` the context and
the lookups derived from it; ``inputs`` ties them together.
"""

from alerts.sources.context import (
    EmergencyMeasures,
    RuleContext,
    load_rule_context,
    region_of,
    voc_limits_from_register,
)
from alerts.sources.inputs import RuleInputs

__all__ = [
    "EmergencyMeasures",
    "RuleContext",
    "RuleInputs",
    "load_rule_context",
    "region_of",
    "voc_limits_from_register",
]
