"""Kubernetes: Events on the own Pod, eviction, wiring checks, restart verification.

Everything here is optional: without API access configured, the watcher works the same
and says once that these features are off. `kubernetes_asyncio` is imported lazily.
"""
