"""Hang detection: silence in the logs, a step counter that stops, a stale heartbeat file."""
