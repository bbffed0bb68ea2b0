"""Developer tooling: the dev gateway (a local APIM stand-in), demo data and the local run, the
Azurite helper, the KQL analyzer check and the log import into the local DuckDB workspace.

None of it is deployed (``.funcignore`` excludes ``shared/tooling/``) and production code
(``function_app``, ``shared.triggers``, ``shared.api``, ``shared.services``, ``shared.core``,
``shared.adapters``) never imports it; only the command line and the tests do.
"""
