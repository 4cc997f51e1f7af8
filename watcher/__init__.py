"""pod-watcher: decides when a Pod should restart all its containers in place."""

__version__ = "0.1.0"
