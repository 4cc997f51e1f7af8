"""What the GPU relay reads in the trainer's container: which GPUs it holds, and one raw
answer of a GPU tool per poll (nvidia-smi's output and exit code, or NVML's values and
error codes). Nothing here judges a reading: the watcher parses and classifies.

Every read is bounded: nvidia-smi runs in its own process group under a deadline and is
killed with the group when late, its output capped; a run that outlives the kill (stuck
in the driver) is remembered and no new one starts until it is gone. NVML is read in a
daemon thread under the same deadline; a read still blocked is reported, not repeated.
Standard library and Python 3.8 only, like the rest of the launcher.
"""

from __future__ import annotations

import contextlib
import glob
import importlib
import os
import selectors
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

MAX_OUTPUT = 256 << 10
"""Bytes kept of each stream of one nvidia-smi run (8 GPUs x 12 fields: under 2 KiB)."""
REAP_TIMEOUT = 1.0
REINIT = (1, 9, 12, 18)
"""NVML errors (uninitialized, driver not loaded, library not found, version mismatch)
after which NVML is initialised again before the next read."""
NO_GPU_VALUES = ("", "void", "none")


def visible_uuids(environ: Mapping[str, str]) -> list[str]:
    """The UUIDs NVIDIA_VISIBLE_DEVICES names (the device plugin's default), else []."""
    values = [v.strip() for v in environ.get("NVIDIA_VISIBLE_DEVICES", "").split(",")]
    values = [v for v in values if v]
    if values and all(v.upper().startswith(("GPU-", "MIG-")) for v in values):
        return values
    return []


def device_nodes() -> list[str]:
    """The GPU device nodes the container runtime put here (`/dev/nvidia0`...)."""
    return sorted(glob.glob("/dev/nvidia[0-9]*"))


def evident(environ: Mapping[str, str]) -> str | None:
    """What says this container holds GPUs, or None. `all` alone is no evidence: CUDA
    images set it whether or not the node gave the container a GPU."""
    uuids = visible_uuids(environ)
    if uuids:
        return "NVIDIA_VISIBLE_DEVICES=" + ",".join(uuids)
    nodes = device_nodes()
    return ", ".join(nodes) + " in the trainer's container" if nodes else None


def find_smi(environ: Mapping[str, str]) -> str | None:
    """nvidia-smi as the NVIDIA container toolkit installs it (POD_WATCHER_NVIDIA_SMI
    overrides the name or path)."""
    return shutil.which(environ.get("POD_WATCHER_NVIDIA_SMI") or "nvidia-smi")


class Smi:
    """Runs nvidia-smi with a deadline, one run at a time."""

    name = "nvidia-smi"

    def __init__(self, path: str) -> None:
        self.path = path
        self.stuck: subprocess.Popen[bytes] | None = None

    def run(self, args: list[str], timeout: float) -> dict[str, Any]:
        """One run: {"code", "stdout", "stderr", "timed_out", "overflow", "error", "stuck_pid"}."""
        answer: dict[str, Any] = {"args": args, "code": None, "stdout": "", "stderr": ""}
        answer.update(timed_out=False, overflow=False, error=None, stuck_pid=None)
        if self.stuck is not None and self.stuck.poll() is None:
            answer.update(timed_out=True, stuck_pid=self.stuck.pid)
            return answer
        self.stuck = None
        try:
            proc = subprocess.Popen(
                [self.path, *args],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            answer["error"] = f"cannot run {self.path}: {exc}"
            return answer
        finished = False
        try:
            out, err, late, flood = _collect(proc, time.monotonic() + timeout)
            answer.update(stdout=_text(out), stderr=_text(err), timed_out=late, overflow=flood)
            if not (late or flood):
                answer["code"] = proc.wait()
                finished = True
        finally:  # late, flooding, or the relay told to end (SIGTERM) meanwhile
            if not finished:
                answer["stuck_pid"] = None if self._kill(proc) else proc.pid
        return answer

    def _kill(self, proc: subprocess.Popen[bytes]) -> bool:
        """Kill the run's group; whether it is gone (else it is remembered as stuck)."""
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
        try:
            proc.wait(REAP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.stuck = proc  # in the driver, uninterruptible: wait for it next time
            return False
        return True

    def close(self) -> None:
        if self.stuck is not None:
            with contextlib.suppress(OSError):
                os.killpg(self.stuck.pid, signal.SIGKILL)


def _collect(proc: subprocess.Popen[bytes], deadline: float) -> tuple[bytes, bytes, bool, bool]:
    """Both pipes to their end, or to the deadline, or past the cap: (out, err, late, flood)."""
    chunks = {1: bytearray(), 2: bytearray()}
    with selectors.DefaultSelector() as selector:
        for stream, pipe in ((1, proc.stdout), (2, proc.stderr)):
            assert pipe is not None
            selector.register(pipe, selectors.EVENT_READ, stream)
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                return bytes(chunks[1]), bytes(chunks[2]), True, False
            for key, _ in selector.select(left):
                data = os.read(key.fd, 65536)
                if not data:
                    selector.unregister(key.fileobj)
                    continue
                chunks[key.data] += data
                if len(chunks[key.data]) > MAX_OUTPUT:
                    return bytes(chunks[1][:MAX_OUTPUT]), bytes(chunks[2][:MAX_OUTPUT]), False, True
    return bytes(chunks[1]), bytes(chunks[2]), False, False


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")


class Nvml:
    """The `pynvml` binding, if the trainer's Python has it and nvmlInit works."""

    name = "nvml"

    def __init__(self, module: Any) -> None:
        self.nvml = module
        self.busy: threading.Thread | None = None
        self.reinit = False

    @classmethod
    def load(cls, timeout: float) -> tuple[Nvml | None, str]:
        """The binding, initialised; or None and why not."""
        try:
            module = importlib.import_module("pynvml")
        except ImportError as exc:
            return None, f"pynvml does not import ({exc})"
        nvml = cls(module)
        answer = nvml._deadline(module.nvmlInit, timeout)
        if answer["timed_out"]:
            return None, f"nvmlInit did not return within {timeout:g}s"
        if answer["error"]:
            return None, f"nvmlInit failed: {answer['error'][1]}"
        return nvml, ""

    def read(self, timeout: float) -> dict[str, Any]:
        """Every GPU NVML sees: {"gpus": [...], "error": [code, text] or None, "timed_out"}."""
        if self.busy is not None and self.busy.is_alive():
            return {"gpus": [], "error": None, "timed_out": True, "blocked": True}
        answer = self._deadline(self._reinit_and_read, timeout)
        self.reinit = any(code in REINIT for code in _codes(answer))
        return answer

    def _reinit_and_read(self) -> list[dict[str, Any]]:
        if self.reinit:
            with contextlib.suppress(Exception):
                self.nvml.nvmlShutdown()
            self.nvml.nvmlInit()
        return self._gpus()

    def _deadline(self, work: Callable[[], Any], timeout: float) -> dict[str, Any]:
        result: dict[str, Any] = {}

        def target() -> None:
            try:
                result["gpus"] = work()
            except Exception as exc:  # NVMLError and whatever an old binding raises
                result["error"] = [getattr(exc, "value", None), str(exc)[:300]]

        thread = threading.Thread(target=target, name="gpu-relay-nvml", daemon=True)
        thread.start()
        thread.join(timeout)
        if thread.is_alive():
            self.busy = thread
            return {"gpus": [], "error": None, "timed_out": True}
        return {"gpus": result.get("gpus") or [], "error": result.get("error"), "timed_out": False}

    def _gpus(self) -> list[dict[str, Any]]:
        return [self._gpu(index) for index in range(int(self.nvml.nvmlDeviceGetCount()))]

    def _gpu(self, index: int) -> dict[str, Any]:
        """One GPU's identity and health values; NVML's error code where a call failed."""
        nvml = self.nvml
        gpu: dict[str, Any] = {"index": index}
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            gpu["uuid"] = _str(nvml.nvmlDeviceGetUUID(handle))
            gpu["bus_id"] = _str(nvml.nvmlDeviceGetPciInfo(handle).busId)
        except Exception as exc:  # GPU_IS_LOST, UNKNOWN: "Unable to determine the handle"
            gpu["error"] = [getattr(exc, "value", None), str(exc)[:300]]
            return gpu
        calls: tuple[tuple[str, Callable[[], Any]], ...] = (
            ("name", lambda: _str(nvml.nvmlDeviceGetName(handle))),
            # NVML_MEMORY_ERROR_TYPE_UNCORRECTED = 1, NVML_VOLATILE_ECC = 0
            ("ecc", lambda: int(nvml.nvmlDeviceGetTotalEccErrors(handle, 1, 0))),
            ("rows", lambda: [int(v) for v in nvml.nvmlDeviceGetRemappedRows(handle)]),
            ("pages_pending", lambda: int(nvml.nvmlDeviceGetRetiredPagesPendingStatus(handle))),
            ("reasons", lambda: _clock_reasons(nvml, handle)),
            ("recovery", lambda: _recovery(nvml, handle)),
        )
        errors: dict[str, Any] = {}
        for key, call in calls:
            try:
                gpu[key] = call()
            except AttributeError:  # an older binding without this call
                gpu[key] = None
            except Exception as exc:
                errors[key] = [getattr(exc, "value", None), str(exc)[:200]]
        if errors:
            gpu["errors"] = errors
        return gpu

    def close(self) -> None:
        if self.busy is None or not self.busy.is_alive():
            with contextlib.suppress(Exception):
                self.nvml.nvmlShutdown()


def _codes(answer: dict[str, Any]) -> list[object]:
    """Every NVML error code in one answer: of NVML itself, of a GPU, of a value."""
    errors = [answer.get("error")]
    for gpu in answer.get("gpus") or ():
        errors += [gpu.get("error"), *(gpu.get("errors") or {}).values()]
    return [error[0] for error in errors if error]


def _clock_reasons(nvml: Any, handle: Any) -> int:
    get = getattr(nvml, "nvmlDeviceGetCurrentClocksEventReasons", None)
    if get is None:  # bindings before 12.535
        get = nvml.nvmlDeviceGetCurrentClocksThrottleReasons
    return int(get(handle))


def _recovery(nvml: Any, handle: Any) -> int | None:
    """NVML field 230 (NVML_FI_DEV_GET_GPU_RECOVERY_ACTION), or None where unsupported."""
    (value,) = nvml.nvmlDeviceGetFieldValues(handle, [nvml.NVML_FI_DEV_GET_GPU_RECOVERY_ACTION])
    if value.nvmlReturn != 0:  # NOT_SUPPORTED before the 570 drivers
        return None
    members = ("dVal", "uiVal", "ulVal", "ullVal", "sllVal", "siVal", "usVal")
    kind = value.valueType if 0 <= value.valueType < len(members) else 1
    return int(getattr(value.value, members[kind]))


def _str(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
