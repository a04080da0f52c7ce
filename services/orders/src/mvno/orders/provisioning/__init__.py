"""The provisioning engine: the saga's executor, its partner calls and its timers."""
