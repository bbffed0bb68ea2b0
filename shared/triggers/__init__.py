"""Azure Functions triggers: parse the trigger, call a service, map errors. Nothing else."""
