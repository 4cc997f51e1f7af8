"""Carry out decisions: last words, then the exit code (or a hold)."""
