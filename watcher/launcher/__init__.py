"""The workload launcher, run in the trainer's container as ``python3 /pod-watcher/launch``.

The watcher ships these modules as one zip application (`watcher.workload.install`), so the
trainer's image needs only a Python 3.8+ interpreter: nothing here may import the watcher,
a third-party package or a feature newer than Python 3.8.
"""
