"""Parsers of what the GPU tools print, each into a `Snapshot` (see `common` for what they
share). The live backends use `smi_csv`, `dcgm_exporter` and `dcgmi`; `smi` (which tells the
nvidia-smi formats apart), `smi_q` and `smi_table` serve only the offline replay and are
never imported by the running watcher."""
