"""The catalogue's pure model: no I/O, no framework, no ORM."""
