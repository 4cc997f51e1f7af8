"""GPU health of the Pod's own GPUs: readings from NVML, nvidia-smi or DCGM, here or relayed
from the trainer's container by the launcher, classified.

`backends/` read the GPUs, `formats/` parse what the tools print, `classification/` says
what the readings mean. At the top: the shared model, the Xid catalog (`xids`), the choice
of backend and of this Pod's GPUs (`select`), the monitor and the offline replay.
"""
