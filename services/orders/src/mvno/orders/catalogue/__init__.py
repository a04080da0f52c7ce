"""The local copy of catalog's offerings and prices: stored, and held in memory per replica."""
