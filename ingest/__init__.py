"""Ingest gateways: HJ 212 over TCP for VOC monitors, HTTPS and MQTT for energy data (issue 4)."""
