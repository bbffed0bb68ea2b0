"""Data only: the default price file shipped with the app (``prices.default.json``)."""
