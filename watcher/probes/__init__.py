"""Probes of the workload's own endpoints, with the fields and meaning of Kubernetes probes."""
