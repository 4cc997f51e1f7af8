"""Every knob of the watcher, with its environment variable, default and meaning.

Each field is `WATCHER_<FIELD>` in the environment (nested fields with `__`, e.g.
`WATCHER_ACTIONS__HARDWARE=hold`) and `<field>` in the file named by `WATCHER_CONFIG`.
The environment overrides the file. `load.py` turns validation errors into messages
that name the variable or file key.
"""

from pathlib import Path
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from watcher.config.gang import GangSettings
from watcher.config.values import (
    dns_label,
    dns_subdomain,
    http_url,
    listen_host,
    one_number_pattern,
    usable_glob,
    usable_path,
    usable_path_or_none,
    usable_restart_code,
)
from watcher.probes.spec import ProbeSpec
from watcher.rules.rule import Rule
from watcher.types import Action, FaultClass

CommaList = Annotated[tuple[str, ...], NoDecode]
"""A list given as ``a,b,c`` in the environment and as a list in the file."""

DEFAULT_ACTIONS: dict[FaultClass, Action] = {
    FaultClass.TRANSIENT: Action.RESTART,
    FaultClass.APPLICATION: Action.RESTART,
    FaultClass.INFRASTRUCTURE: Action.RESTART,
    FaultClass.HANG: Action.RESTART,
    FaultClass.HARDWARE: Action.EVICT,
    FaultClass.PLATFORM: Action.EVICT,
}
ACTIONABLE = (Action.RESTART, Action.EVICT, Action.FAIL, Action.HOLD, Action.WARN)


def _actionable(action: Action) -> Action:
    if action not in ACTIONABLE:
        allowed = ", ".join(a.value for a in ACTIONABLE)
        raise ValueError(f"{action.value!r} is not one of {allowed}")
    return action


ClassAction = Annotated[Action, AfterValidator(_actionable)]

GpuBackend = Literal["auto", "off", "nvml", "nvidia-smi", "dcgm", "relay"]
DAY = 86400.0
WEEK = 7 * DAY


class WatcherSettings(BaseSettings, GangSettings):
    """The effective configuration."""

    model_config = SettingsConfigDict(
        env_prefix="WATCHER_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
        str_strip_whitespace=True,
        use_attribute_docstrings=True,
        allow_inf_nan=False,
    )

    log_paths: CommaList = ()
    """Comma-separated globs of log files to watch (`**` crosses directories)."""
    state_dir: Path | None = None
    """Required. Directory for the ledger and read cursors: an emptyDir survives restarts."""
    restart_exit_code: Annotated[int, AfterValidator(usable_restart_code)] = 88
    """Exit code that triggers the Pod's RestartAllContainers rule. Not 0, 1, 2 or >= 128."""
    termination_log: Path | None = Path("/dev/termination-log")
    """Where the reason is written before exiting (Kubernetes shows it); empty disables."""
    http_host: str = Field(default="0.0.0.0", max_length=253)
    """Address of the health and metrics server."""
    http_port: int = Field(default=9188, ge=0, le=65535)
    """Port of /healthz, /readyz, /status and /metrics; 0 picks a free port (logged)."""
    dry_run: bool = False
    """Decide and report, but never exit or act for a fault ("would exit 88 because ...")."""
    max_restarts: int = Field(default=3, ge=0, le=100)
    """In-place restarts allowed within `restart_window`; one more is refused."""
    restart_window: float = Field(default=3600.0, ge=1, le=WEEK)
    """Seconds over which `max_restarts` is counted."""
    min_uptime: float = Field(default=0.0, ge=0, le=DAY)
    """Refuse a restart sooner than this many seconds after the previous one (0: off)."""
    budget_exhausted_action: Literal[Action.FAIL, Action.HOLD, Action.EVICT] = Action.FAIL
    """What to do instead of a refused restart: `fail` lets the Pod fail so its owner decides
    (needs the launcher, holds without), `evict` needs the Kubernetes API (fails without),
    `hold` keeps the Pod Running and the GPUs idle for inspection."""
    actions: dict[FaultClass, ClassAction] = Field(default_factory=lambda: dict(DEFAULT_ACTIONS))
    """Action per fault class, e.g. `WATCHER_ACTIONS__HARDWARE=hold`."""
    config: Path | None = None
    """Optional YAML or JSON file with any of these settings, rules included."""
    rule_packs: CommaList = ("all",)
    """Built-in rule packs to load: `all`, `none`, or a comma-separated list of names."""
    rules: tuple[Rule, ...] = ()
    """Your own rules: a JSON list here, a YAML list in the file. A built-in rule with the
    same reason is replaced."""
    disable_rules: CommaList = ()
    """Comma-separated reasons of built-in rules to turn off."""
    extra_excludes: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """More exclude patterns for rules, by reason: `{NcclError: ['my benign variant']}`."""
    silence_timeout: float | None = Field(default=None, ge=1, le=WEEK)
    """Fatal (hang) when no log bytes arrive for this many seconds after the first ones."""
    startup_grace: float | None = Field(default=None, ge=1, le=WEEK)
    """Fatal (hang) when the workload writes nothing (or no step, or no heartbeat) this
    long after start; silence and stall timers never fire within it. Off: wait forever."""
    progress_pattern: Annotated[
        str | None, Field(max_length=4096), AfterValidator(one_number_pattern)
    ] = None
    """RE2 with one capture group holding a number, e.g. `step (\\d+)`."""
    progress_timeout: float | None = Field(default=None, ge=1, le=WEEK)
    """Fatal (hang) when the captured number has not changed for this many seconds."""
    heartbeat_file: Path | None = None
    """A file whose modification time the workload refreshes."""
    heartbeat_timeout: float | None = Field(default=None, ge=1, le=WEEK)
    """Fatal (hang) when the heartbeat file is older than this many seconds."""
    probes: tuple[ProbeSpec, ...] = ()
    """HTTP and TCP checks of the workload (a JSON list here, a YAML list in the file)."""
    kubernetes: Literal["auto", "off"] = "auto"
    """`auto`: use the API (Events, eviction, wiring and restart checks) when
    WATCHER_POD_NAME is set and KUBECONFIG or an in-cluster service account is there."""
    pod_name: Annotated[str | None, AfterValidator(dns_subdomain)] = None
    """This Pod's name (downward API `metadata.name`)."""
    pod_namespace: Annotated[str | None, AfterValidator(dns_label)] = None
    """This Pod's namespace (downward API `metadata.namespace`); default: the service
    account's namespace in-cluster, else `default`."""
    container_name: Annotated[str, AfterValidator(dns_label)] = "pod-watcher"
    """This container's name in the Pod spec, for the wiring check."""
    api_timeout: float = Field(default=2.0, ge=0.1, le=60)
    """Deadline in seconds for each Kubernetes API call; the exit never waits longer."""
    verify_restart_timeout: float = Field(default=300.0, ge=1, le=DAY)
    """After a restart we asked for, how long to wait for the other containers to come back."""
    gpu_poll_interval: float = Field(default=10.0, ge=0.1, le=3600)
    """Seconds between two GPU health polls."""
    gpu_timeout: float = Field(default=5.0, ge=0.1, le=120)
    """Deadline in seconds of each GPU query (an NVML call, nvidia-smi, an HTTP GET)."""
    nvidia_smi: Annotated[str, Field(min_length=1), AfterValidator(usable_path)] = "nvidia-smi"
    """The nvidia-smi binary: a name looked up on PATH, or a path."""
    dcgm_exporter_url: Annotated[str | None, Field(max_length=2048), AfterValidator(http_url)] = (
        None
    )
    """dcgm-exporter's URL, e.g. `http://$(NODE_IP):9400/metrics`, NODE_IP from `status.hostIP`."""
    dcgmi: Annotated[str, Field(min_length=1), AfterValidator(usable_path)] = "dcgmi"
    """The dcgmi binary for `dcgmi health -c` with the dcgm backend; used only if found."""
    gpu_uuids: CommaList = ()
    """This Pod's GPUs by UUID; default: NVIDIA_VISIBLE_DEVICES if it lists UUIDs, else all seen."""
    gpu: GpuBackend = "auto"
    """GPU backend: auto (NVML, else nvidia-smi, else the launcher's relay, else off), off,
    nvml, nvidia-smi, dcgm or relay (the launcher reads the trainer's GPUs)."""
    start_position: Literal["end", "start"] = "end"
    """Where to begin in files that exist at the first start: their `end` or their `start`."""
    poll_interval: float = Field(default=10.0, ge=0.1, le=60)
    """Seconds between safety-net re-stats of the watched files (in case inotify is silent)."""
    fallback_poll_interval: float = Field(default=0.25, ge=0.05, le=60)
    """Polling interval once inotify was caught missing a change."""
    rotate_wait: float = Field(default=5.0, ge=0, le=3600)
    """Seconds to keep draining a rotated or deleted file a writer may still hold open."""
    max_line_bytes: int = Field(default=1 << 20, ge=4096, le=64 << 20)
    """Longest line kept whole; a longer one is scanned in pieces of this size."""
    read_chunk_bytes: int = Field(default=128 << 10, ge=4096, le=16 << 20)
    """Bytes read and scanned per step. 128 KiB stays in the CPU's cache from the read to
    the scan: a 40 MB replay took 95 ms in 128 KiB reads, 102 ms in 1 MiB reads."""
    max_files: int = Field(default=256, ge=1, le=16384)
    """Most files followed at once (each holds an open descriptor)."""
    last_words_timeout: float = Field(default=5.0, ge=0.1, le=300)
    """Deadline in seconds for everything between a decision and the exit."""
    queue_size: int = Field(default=1024, ge=1, le=1_000_000)
    """Findings waiting for the policy; more are dropped and counted."""
    log_format: Literal["json", "text"] = "json"
    """`json` lines for machines, `text` for people."""
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # -- the workload launcher and the fate of the Pod (lead) ---------------------------
    launcher_dir: Path | None = None
    """A directory shared with the trainer's container (an emptyDir, e.g. /pod-watcher):
    the watcher installs the launcher there and follows the workload's output and exits."""
    final_exit_codes: Annotated[tuple[int, ...], NoDecode] = ()
    """Exit codes of the workload that mean "do not retry": the Pod fails at once."""
    restart_backoff: float = Field(default=10.0, ge=0, le=3600)
    """Seconds between the first and second in-place restart in the window, doubled for each
    further one (the kubelet spaces RestartAllContainers cycles by nothing); 0: off."""
    restart_backoff_max: float = Field(default=300.0, ge=0, le=86400)
    """The longest back-off between two in-place restarts."""
    stop_grace: float = Field(default=30.0, gt=0, le=3600)
    """Seconds a workload stopped by `fail` gets between SIGTERM and SIGKILL."""

    # -- fail-closed (the log source's honesty) ----------------------------------------
    log_glob_grace: float | None = Field(default=60.0, ge=0, le=DAY)
    """Seconds after start at which a log glob that matches nothing is reported (a log
    line, /status and a warning finding); empty: never."""

    @field_validator("final_exit_codes", mode="after")
    @classmethod
    def _exit_codes(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if len(value) > 64:
            raise ValueError(f"{len(value)} exit codes; at most 64")
        for code in value:
            if not 1 <= code <= 255:
                raise ValueError(f"{code} is not a failing exit code (1..255)")
        return value

    @field_validator(
        "log_paths", "rule_packs", "disable_rules", "gpu_uuids", "final_exit_codes", mode="before"
    )
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(item.strip() for item in value.split(",") if item.strip())
        return value

    @field_validator("log_paths")
    @classmethod
    def _globs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(value) > 64:
            raise ValueError(f"{len(value)} globs; at most 64")
        return tuple(usable_glob(pattern) for pattern in value)

    @field_validator("state_dir", "termination_log", "config", "heartbeat_file")
    @classmethod
    def _paths(cls, value: Path | None) -> Path | None:
        return usable_path_or_none(value)

    @field_validator("http_host")
    @classmethod
    def _host(cls, value: str) -> str:
        return listen_host(value)

    @field_validator("gpu_uuids", "rule_packs", "disable_rules")
    @classmethod
    def _short_items(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(value) > 256 or any(len(item) > 256 for item in value):
            raise ValueError("at most 256 items of at most 256 characters each")
        return value

    @model_validator(mode="after")
    def _pairs(self) -> Self:
        pairs = (
            ("progress_pattern", "progress_timeout"),
            ("heartbeat_file", "heartbeat_timeout"),
        )
        for first, second in pairs:
            if (getattr(self, first) is None) != (getattr(self, second) is None):
                raise ValueError(
                    f"WATCHER_{first.upper()} and WATCHER_{second.upper()} go together: "
                    "set both or neither"
                )
        return self

    @field_validator("gpu")
    @classmethod
    def _dcgm_needs_its_url(cls, value: str, info: ValidationInfo) -> str:
        if value == "dcgm" and info.data.get("dcgm_exporter_url") is None:
            raise ValueError(
                "needs WATCHER_DCGM_EXPORTER_URL (e.g. http://$(NODE_IP):9400/metrics)"
            )
        return value

    @field_validator(
        "termination_log",
        "state_dir",
        "config",
        "heartbeat_file",
        "pod_name",
        "pod_namespace",
        "dcgm_exporter_url",
        "launcher_dir",
        "log_glob_grace",
        "gang_name",
        "gang_size",
        "gang_index",
        "gang_selector",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("actions", mode="after")
    @classmethod
    def _complete_actions(cls, value: dict[FaultClass, Action]) -> dict[FaultClass, Action]:
        return {**DEFAULT_ACTIONS, **value}

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The config file's content arrives as init arguments (see load.py) and must lose
        # to the environment, so the environment comes first.
        return _EnvSource(settings_cls), init_settings


class _EnvSource(EnvSettingsSource):
    """The environment, where JSON nested too deeply is invalid JSON (a message naming the
    variable), not a RecursionError."""

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        try:
            return super().decode_complex_value(field_name, field, value)
        except RecursionError:
            raise ValueError("nested too deeply") from None
