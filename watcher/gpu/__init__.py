"""GPU health of the Pod's own GPUs: readings from NVML, nvidia-smi or DCGM, classified."""
