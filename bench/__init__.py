"""Benchmarks of the service shape against a bare FastAPI + asyncpg baseline (see README.md)."""
