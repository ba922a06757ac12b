"""TimescaleDB storage: migrations, batched idempotent writes and queries. All SQL lives here."""
