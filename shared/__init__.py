"""APIM Chargeback: per-subscription token usage and cost for Azure OpenAI behind APIM."""
