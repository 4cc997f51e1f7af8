"""The whole Pod checked for the traps of in-place restarts (docs/kubelet.md).

`check_wiring` looks at the watcher's own container; this looks at the others too:

- A regular container under `restartPolicy: Never` that dies first (a crash, an OOM kill)
  with a code no rule of its own covers fails the Pod before the kubelet looks at the
  watcher's exit 88. It must run through the launcher, or carry a RestartAllContainers
  rule for its failure codes (then without the launcher, and the budget sees those
  restarts only through the API).
- A container run by the launcher that also restarts all containers on failure codes has
  no brake: when the watcher lets the Pod fail, the rule restarts it anyway.
- The launcher's directory must be one volume, at one path, in the watcher and in every
  container that runs the launcher.
- Without a startupProbe the trainer can start before the watcher follows its output and
  before the launcher is installed.
- kubernetes/kubernetes#140309 (open): after a node restart only the first init container
  runs; the watcher must come first.
"""

from collections.abc import Mapping, Sequence
from typing import Any

from watcher.kube.wiring import RESTART_ALL, WiringProblem, check_wiring

FAILURES = (1, 134, 137, 139)
"""Exit codes of a trainer that died: an exception, an abort, an OOM kill, a segfault."""
LAUNCH = "launch"


def check_pod(
    pod_spec: Mapping[str, Any], container: str, exit_code: int, launcher_dir: str | None
) -> list[WiringProblem]:
    """Every problem of the Pod spec: the watcher's rule, then its workloads."""
    problems = check_wiring(pod_spec, container, exit_code)
    inits = list(pod_spec.get("initContainers") or ())
    watcher = next((c for c in inits if c.get("name") == container), None)
    if watcher is None:
        return problems
    if "startupProbe" not in watcher:
        problems.append(
            WiringProblem(
                "WatcherNotAwaited",
                f"{container!r} has no startupProbe on /readyz: the trainer can start before "
                "the watcher follows its output and before the launcher is installed",
            )
        )
    if inits and inits[0] is not watcher:
        problems.append(
            WiringProblem(
                "WatcherNotFirst",
                f"{container!r} is not the first init container: after a node restart only "
                "the first one runs (kubernetes/kubernetes#140309); put it first",
            )
        )
    policy = pod_spec.get("restartPolicy", "Always")
    for regular in pod_spec.get("containers") or ():
        problems += _workload_problems(regular, policy, launcher_dir, watcher)
    return problems


def _workload_problems(
    spec: Mapping[str, Any], policy: str, launcher_dir: str | None, watcher: Mapping[str, Any]
) -> list[WiringProblem]:
    name = spec.get("name")
    launched = launcher_dir is not None and _runs_launcher(spec, launcher_dir)
    covered = [code for code in FAILURES if _restarts_all_on(spec, code)]
    if launched and covered:
        return [
            WiringProblem(
                "RestartRuleOnLaunchedWorkload",
                f"{name!r} runs through the launcher and also restarts all containers on exit "
                f"codes {covered}: when the watcher lets the Pod fail (its budget spent), "
                "that rule restarts it anyway, with no brake; remove the rule",
            )
        ]
    if launched:
        return _shared_problems(spec, str(launcher_dir), watcher)
    if launcher_dir is None and _runs_a_launcher(spec):
        return [
            WiringProblem(
                "LauncherNotConfigured",
                f"{name!r} runs a launcher, but the watcher has no WATCHER_LAUNCHER_DIR: "
                "nobody installs it, and nobody answers its exits; set WATCHER_LAUNCHER_DIR "
                "to the directory it runs from",
            )
        ]
    if policy != "Never" or len(covered) == len(FAILURES):
        return []
    how = f"python3 {launcher_dir or '/pod-watcher'}/{LAUNCH} -- <command>"
    return [
        WiringProblem(
            "WorkloadNotLaunched",
            f"{name!r} runs neither through the launcher nor under a RestartAllContainers rule "
            f"for its failure codes {list(FAILURES)}: when it dies first (an exception, an OOM "
            "kill, a segfault), the kubelet fails the Pod (restartPolicy Never) before it "
            f"looks at the watcher's exit; run it as {how}",
        )
    ]


def _shared_problems(
    spec: Mapping[str, Any], launcher_dir: str, watcher: Mapping[str, Any]
) -> list[WiringProblem]:
    ours, theirs = _volume_at(watcher, launcher_dir), _volume_at(spec, launcher_dir)
    if ours is not None and ours == theirs:
        return []
    return [
        WiringProblem(
            "LauncherNotShared",
            f"{spec.get('name')!r} runs {launcher_dir}/{LAUNCH}, but does not mount the "
            f"watcher's volume there ({ours or 'none'} in the watcher, {theirs or 'none'} "
            "here): mount the same emptyDir at the same path in both",
        )
    ]


def _runs_launcher(spec: Mapping[str, Any], launcher_dir: str) -> bool:
    argv = [*spec.get("command", ()), *spec.get("args", ())]
    target = f"{launcher_dir.rstrip('/')}/{LAUNCH}"
    return target in argv[:2]


def _runs_a_launcher(spec: Mapping[str, Any]) -> bool:
    argv = [*spec.get("command", ()), *spec.get("args", ())]
    return any(str(part).endswith(f"/{LAUNCH}") for part in argv[:2])


def _restarts_all_on(spec: Mapping[str, Any], code: int) -> bool:
    for rule in spec.get("restartPolicyRules") or ():
        codes = rule.get("exitCodes") or {}
        operator, values = codes.get("operator"), codes.get("values") or []
        if operator in ("In", "NotIn") and (code in values) == (operator == "In"):
            return bool(rule.get("action") == RESTART_ALL)
    return False


def _volume_at(spec: Mapping[str, Any], path: str) -> tuple[str, str] | None:
    """The (volume, mountPath) holding ``path`` in the container, if any."""
    mounts: Sequence[Mapping[str, Any]] = spec.get("volumeMounts") or ()
    holders = [m for m in mounts if _holds(str(m.get("mountPath", "")), path)]
    if not holders:
        return None
    best = max(holders, key=lambda m: len(str(m.get("mountPath", ""))))
    return str(best.get("name")), str(best.get("mountPath"))


def _holds(mount_path: str, path: str) -> bool:
    return path == mount_path or path.startswith(mount_path.rstrip("/") + "/")
