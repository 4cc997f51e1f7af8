"""End-to-end tests: the real `pod-watcher` process, its files, exit codes and HTTP API."""
