"""The orders service's pure model: no I/O, no framework, no ORM."""
