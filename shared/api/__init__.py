"""The HTTP report API (FastAPI), served by Azure Functions through AsgiFunctionApp."""
