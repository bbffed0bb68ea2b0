"""``chargeback workspace import``: real APIM logs into the local DuckDB workspace.

``parse`` turns file contents into Log Analytics rows (pure, no DuckDB); ``writer`` inserts them
through ``shared.adapters.local_workspace`` without duplicating rows already there.
"""
