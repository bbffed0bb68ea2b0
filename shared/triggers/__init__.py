"""Azure Functions triggers: parse the trigger, call a service, map errors. Nothing else."""

from shared.triggers.sdk_logging import quiet_azure_sdk

quiet_azure_sdk()  # every trigger module imports this package first: the SDK's HTTP logs stay at WARNING
