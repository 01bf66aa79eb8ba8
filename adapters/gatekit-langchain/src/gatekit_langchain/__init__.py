"""gatekit adapter."""
