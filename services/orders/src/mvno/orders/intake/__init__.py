"""Placing an order once per Idempotency-Key: one statement on a plain asyncpg connection."""
