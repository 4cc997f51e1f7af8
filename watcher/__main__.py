"""`python -m watcher` runs the same entry point as the `pod-watcher` script."""

from watcher.cli import main

main()
