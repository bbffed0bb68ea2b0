"""Pure rules: no Azure import, no I/O; tested with plain data."""
