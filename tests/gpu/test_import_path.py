"""The running watcher imports only the GPU code it uses: no offline-only parser, and of
the backends only the chosen one. Each case runs in a fresh interpreter."""

import json
import subprocess
import sys

import pytest

OFFLINE_ONLY = {
    "watcher.gpu.replay",
    "watcher.gpu.formats.smi",
    "watcher.gpu.formats.smi_q",
    "watcher.gpu.formats.smi_table",
    "xml.etree.ElementTree",
}
BACKENDS = {
    "nvidia-smi": {"watcher.gpu.backends.smi", "watcher.gpu.formats.smi_csv"},
    "nvml": {"watcher.gpu.backends.nvml", "watcher.gpu.backends.nvml_events"},
    "relay": {
        "watcher.gpu.backends.relay",
        "watcher.gpu.backends.relay_files",
        "watcher.gpu.formats.relay_nvml",
        "watcher.gpu.backends.smi",
        "watcher.gpu.formats.smi_csv",
    },
    "dcgm": {
        "watcher.gpu.backends.dcgm",
        "watcher.gpu.formats.dcgm_exporter",
        "watcher.gpu.formats.dcgmi",
        "prometheus_client.parser",
    },
}
CHOOSE = """
import json, sys
from pathlib import Path
import watcher.service
from tests.gpu.fake_pynvml import FakeNvml, h100s
from watcher.config.settings import WatcherSettings
from watcher.gpu.select import choose
settings = WatcherSettings(
    state_dir=Path("/tmp/state"), log_paths=("/tmp/*.log",), gpu=sys.argv[1],
    dcgm_exporter_url="http://127.0.0.1:9400/metrics", gpu_uuids=("GPU-1",),
    launcher_dir=Path("/tmp/pod-watcher"),
)
nvml = FakeNvml(h100s(1))
choice = choose(settings, {}, import_module=lambda name: nvml, which=lambda name: "/bin/" + name)
assert choice.backend is not None, choice.why
print(json.dumps(sorted(sys.modules)))
"""


def modules_after(*args: str) -> set[str]:
    command = [sys.executable, "-c", CHOOSE, *args]
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout))


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_the_chosen_backend_alone_is_imported(backend: str) -> None:
    loaded = modules_after(backend)
    assert BACKENDS[backend] <= loaded
    others = set().union(*(m for name, m in BACKENDS.items() if name != backend))
    assert not (others - BACKENDS[backend]) & loaded
    assert not OFFLINE_ONLY & loaded
