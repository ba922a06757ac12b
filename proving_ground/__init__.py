"""The proving ground (issue 8): suites that try to break EnergyWatch on purpose.

Each suite is a module with a pure part (what to send, what to expect) and a runner that
drives the real services; the ``energywatch prove`` commands and the tests call the runners,
the tests with reduced numbers.
"""
