"""Reporters: structured logs, /status, /metrics and the HTTP server. They observe, never decide."""
