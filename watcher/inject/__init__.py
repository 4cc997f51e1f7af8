"""`pod-watcher inject`: add pod-watcher to Pod, Job, JobSet, PyTorchJob and TrainJob manifests.

The webhook (`watcher.webhook`) runs the same functions on the Pods it admits. Nothing here is
imported by `pod-watcher run`.
"""
