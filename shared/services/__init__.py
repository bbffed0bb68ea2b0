"""Use cases: they take ports, never SDK clients."""
