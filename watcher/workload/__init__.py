"""The workload as a source: the launcher it runs under, its starts and its exits."""
