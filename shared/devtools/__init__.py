"""Developer tooling (local Azurite, demo run); never used by the deployed functions."""
