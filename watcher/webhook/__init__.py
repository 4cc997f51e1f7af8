"""`pod-watcher webhook`: inject as a mutating admission webhook, over TLS.

Nothing here is imported by `pod-watcher run`.
"""
