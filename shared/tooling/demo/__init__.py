"""The demo: generated gateway traffic for the local workspace, live traffic through the dev
gateway, and ``chargeback local-run`` (the whole pipeline on this machine)."""
