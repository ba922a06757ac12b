"""Deterministic simulators of enterprises' meters (pure) and runners that send their output."""
