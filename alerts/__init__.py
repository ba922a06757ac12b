"""Alerting: rules that judge readings (pure) and the notifier that delivers their events."""
