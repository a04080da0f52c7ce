"""Identifiers drawn from a seeded generator, so a repeated run hands out the same ids."""

from __future__ import annotations

import random
import uuid


def new_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def stream(seed: int, name: str) -> random.Random:
    """An independent generator per partner (and one for faults), so that, say, an injected
    error decision does not shift the ids the network operator hands out next."""
    return random.Random(f"{seed}:{name}")  # noqa: S311  # simulated outcomes, not secrets
