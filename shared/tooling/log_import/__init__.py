"""``chargeback workspace import``: real APIM logs into the local DuckDB workspace.

``readers`` detects a file's format (gzip, Avro, JSON or CSV) and reads its records
(``json_records``, ``avro_events``, ``csv_export``); ``records`` turns each into a Log Analytics
row, its values converted by ``coercion`` (all pure, no DuckDB); ``writer`` inserts the rows
through ``shared.adapters.local_workspace`` without duplicating rows already there.
"""
