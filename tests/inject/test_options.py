"""inject's options and the shapes of Pod a user brings: each output still passes the
wiring check (inject refuses to write one that does not), and uninject gives back the input."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.inject.shapes import Obj, inject, load_all
from watcher.inject.command import GPU_CHOICES
from watcher.inject.documents import inject_documents, uninject_documents
from watcher.inject.gpu import WIRINGS
from watcher.inject.pieces import InjectError, Options
from watcher.inject.yamlio import dump


def pod(*containers: Obj, **spec: Any) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"restartPolicy": "Never", **spec, "containers": list(containers)},
    }


TRAINER = {"name": "trainer", "image": "t", "command": ["python", "train.py"]}


def one(document: Obj, options: Options | None = None) -> Obj:
    (out,) = inject_documents([document], options or Options()).documents
    return out


def env(container: Obj) -> dict[str, Obj]:
    return {e["name"]: e for e in container["env"]}


def volumes(document: Obj) -> dict[str, Obj]:
    return {v["name"]: v for v in document["spec"]["volumes"]}


def test_every_gpu_wiring_is_offered() -> None:
    assert set(GPU_CHOICES) == set(WIRINGS)


def test_config_map_none_and_named() -> None:
    bare = one(pod(TRAINER), Options(config_map=None))
    assert "config" not in volumes(bare)
    assert "WATCHER_CONFIG" not in env(bare["spec"]["initContainers"][0])
    named = one(pod(TRAINER), Options(config_map="team-rules"))
    assert volumes(named)["config"]["configMap"]["name"] == "team-rules"


def test_api_none_leaves_the_service_account_alone() -> None:
    result = inject("--api", "none", stdin=dump([pod(TRAINER)]))
    assert result.returncode == 0, result.stderr
    assert "service account" not in result.stderr
    (out,) = load_all(result.stdout)
    spec = out["spec"]
    assert "serviceAccountName" not in spec and "automountServiceAccountToken" not in spec
    assert spec["enableServiceLinks"] is False
    assert "kube-api-access" not in volumes(out)
    watcher = spec["initContainers"][0]
    assert env(watcher)["WATCHER_KUBERNETES"]["value"] == "off"
    assert all(m["name"] != "kube-api-access" for m in watcher["volumeMounts"])


def _watcher_check(watcher: Obj, tmp_path: Path, node_ip: str) -> dict[str, Any]:
    """`pod-watcher check` with the sidecar's environment, $(VAR) expanded as the kubelet
    expands it."""
    variables: dict[str, str] = {"NODE_IP": node_ip}
    for entry in watcher["env"]:
        value = entry.get("value")
        if value is not None:
            variables[entry["name"]] = value.replace("$(NODE_IP)", node_ip)
    variables |= {
        "WATCHER_LAUNCHER_DIR": str(tmp_path / "pw"),
        "WATCHER_STATE_DIR": str(tmp_path / "state"),
        "WATCHER_TERMINATION_LOG": "",
        "WATCHER_POD_NAME": "p",
    }
    variables.pop("WATCHER_CONFIG", None)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WATCHER_")}
    result = subprocess.run(
        [sys.executable, "-m", "watcher", "check"], env=clean | variables,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    settings: dict[str, Any] = json.loads(result.stdout)["settings"]
    return settings


def test_gpu_dcgm_reads_dcgm_exporter_on_the_node(tmp_path: Path) -> None:
    gpu = {**TRAINER, "resources": {"limits": {"nvidia.com/gpu": 8}}}
    result = inject_documents([pod(gpu)], Options(gpu="dcgm"))
    assert result.notes == []
    watcher = result.documents[0]["spec"]["initContainers"][0]
    names = [e["name"] for e in watcher["env"]]
    assert names.index("NODE_IP") < names.index("WATCHER_DCGM_EXPORTER_URL")  # $(NODE_IP)
    assert env(watcher)["NODE_IP"]["valueFrom"] == {"fieldRef": {"fieldPath": "status.hostIP"}}
    assert "resources" not in watcher or "nvidia.com/gpu" not in str(watcher["resources"])
    settings = _watcher_check(watcher, tmp_path, "10.0.0.7")
    assert settings["gpu"] == "dcgm"
    assert settings["dcgm_exporter_url"] == "http://10.0.0.7:9400/metrics"


def test_gpu_dcgm_or_relay_without_gpus_says_so() -> None:
    for wiring in ("dcgm", "relay"):
        result = inject_documents([pod(TRAINER)], Options(gpu=wiring))
        assert result.notes == [
            f"Pod/p at spec: no container requests nvidia.com/gpu: is --gpu {wiring} right?"
        ]


def test_gpu_auto_relays_the_trainer_s_gpus_and_leaves_a_cpu_pod_alone(tmp_path: Path) -> None:
    gpu = {**TRAINER, "resources": {"limits": {"nvidia.com/gpu": 8}}}
    relayed = inject_documents([pod(gpu)], Options()).documents[0]["spec"]
    watcher = relayed["initContainers"][0]
    assert env(watcher)["WATCHER_GPU"] == {"name": "WATCHER_GPU", "value": "relay"}
    assert _watcher_check(watcher, tmp_path, "10.0.0.7")["gpu"] == "relay"
    plain = inject_documents([pod(TRAINER)], Options()).documents[0]["spec"]
    assert "WATCHER_GPU" not in env(plain["initContainers"][0])


def test_a_volume_name_the_pod_uses_is_left_to_it() -> None:
    mine = {**TRAINER, "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}]}
    source = pod(mine, volumes=[{"name": "config", "configMap": {"name": "app"}}])
    out = one(source)
    found = volumes(out)
    assert found["config"] == {"name": "config", "configMap": {"name": "app"}}
    assert found["pod-watcher-config"]["configMap"]["name"] == "pod-watcher-config"
    mounts = {m["name"] for m in out["spec"]["initContainers"][0]["volumeMounts"]}
    assert "pod-watcher-config" in mounts and "config" not in mounts
    assert one(out) == out
    assert uninject_documents([out], Options()).documents == [source]


def test_several_containers_need_a_name() -> None:
    source = pod(TRAINER, {"name": "exporter", "image": "e", "command": ["serve"]},
                 restartPolicy="OnFailure")  # fmt: skip
    result = inject(stdin=dump([source]))
    assert result.returncode == 2 and result.stdout == ""
    assert "2 containers (trainer, exporter): name the trainer" in result.stderr
    named = inject("--container", "trainer", stdin=dump([source]))
    assert named.returncode == 0, named.stderr
    (out,) = load_all(named.stdout)
    assert [c["command"][:2] for c in out["spec"]["containers"]] == [
        ["python3", "/pod-watcher/launch"],
        ["serve"],
    ]
    source["metadata"]["annotations"] = {"kubectl.kubernetes.io/default-container": "trainer"}
    assert one(source)["spec"]["containers"][0]["command"][0] == "python3"


def test_a_second_unlaunched_container_under_never_is_refused() -> None:
    """The wiring check's WorkloadNotLaunched: inject writes nothing that fails it."""
    source = pod(TRAINER, {"name": "exporter", "image": "e", "command": ["serve"]})
    with pytest.raises(InjectError, match="still not wired after inject: WorkloadNotLaunched"):
        inject_documents([source], Options(containers=("trainer",)))


def test_the_pod_s_own_service_account_is_kept() -> None:
    result = inject(stdin=dump([pod(TRAINER, serviceAccountName="trainer-sa")]))
    assert result.returncode == 0, result.stderr
    (out,) = load_all(result.stdout)
    assert out["spec"]["serviceAccountName"] == "trainer-sa"
    assert "keeps serviceAccountName: trainer-sa (inject would set pod-watcher)" in result.stderr
    assert "service account 'trainer-sa' needs the Role of manifests/rbac.yaml" in result.stderr


def test_the_token_the_api_server_mounted_goes(tmp_path: Path) -> None:
    """A Pod as the ServiceAccount admission plugin leaves it (what the webhook sees)."""
    token = {"name": "kube-api-access-x7k2q", "mountPath": "/var/run/secrets/kubernetes.io/"
             "serviceaccount", "readOnly": True}  # fmt: skip
    volume = {"name": "kube-api-access-x7k2q", "projected": {"sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}}]}}  # fmt: skip
    source = pod({**TRAINER, "volumeMounts": [token]}, serviceAccountName="default",
                 volumes=[volume])  # fmt: skip
    out = one(source)
    assert "kube-api-access-x7k2q" not in volumes(out)
    assert out["spec"]["containers"][0]["volumeMounts"] == [
        {"name": "pod-watcher", "mountPath": "/pod-watcher"}
    ]
    assert out["spec"]["serviceAccountName"] == "pod-watcher"


def test_other_documents_pass_through() -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}}
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": [TRAINER]}}},
    }  # fmt: skip
    listed = {"apiVersion": "v1", "kind": "List", "items": [pod(TRAINER)]}
    result = inject_documents([config, deployment, listed], Options())
    assert result.documents[:2] == [config, deployment]
    assert result.documents[2]["items"][0]["spec"]["initContainers"][0]["name"] == "pod-watcher"
    assert result.notes == ["Deployment/d: not a kind inject knows; left unchanged"]


def test_files_stdin_and_errors(tmp_path: Path) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(dump([pod(TRAINER)]), "utf-8")
    second.write_text("a: [1\n", "utf-8")
    both = inject(str(first), "-", stdin=dump([pod(TRAINER)]))
    assert both.returncode == 0 and len(load_all(both.stdout)) == 2
    broken = inject(str(first), str(second))
    assert broken.returncode == 2 and broken.stdout == ""
    assert broken.stderr.startswith(f"pod-watcher inject: {second}: not valid YAML:")
    missing = inject(str(tmp_path / "none.yaml"))
    assert missing.returncode == 2
    assert f"{tmp_path / 'none.yaml'}: cannot read it" in missing.stderr
    scalar = inject(stdin="just text\n")
    assert scalar.returncode == 2
    assert scalar.stderr.strip() == "pod-watcher inject: stdin: document 1 is not a mapping"


def test_the_launcher_s_path_must_be_free() -> None:
    taken = {**TRAINER, "volumeMounts": [{"name": "data", "mountPath": "/pod-watcher/data"}]}
    with pytest.raises(InjectError, match=r"mounts 'data' at /pod-watcher/data, where the"):
        inject_documents([pod(taken, volumes=[{"name": "data", "emptyDir": {}}])], Options())


def test_another_run_with_other_options_replaces_the_first() -> None:
    first = one(pod(TRAINER), Options(image="registry.example/pod-watcher:1.0"))
    second = one(first, Options(image="registry.example/pod-watcher:1.1", config_map=None))
    (watcher,) = second["spec"]["initContainers"]
    assert watcher["image"] == "registry.example/pod-watcher:1.1"
    assert "config" not in volumes(second)
    assert second["spec"]["containers"][0]["command"][:4] == [
        "python3", "/pod-watcher/launch", "--", "python",
    ]  # fmt: skip


def test_init_containers_of_the_pod_stay_after_the_watcher() -> None:
    setup = {"name": "fetch-data", "image": "f", "command": ["fetch"]}
    out = one(pod(TRAINER, initContainers=[setup]))
    assert [c["name"] for c in out["spec"]["initContainers"]] == ["pod-watcher", "fetch-data"]
    assert uninject_documents([out], Options()).documents == [pod(TRAINER, initContainers=[setup])]


def test_a_command_already_run_by_the_launcher_is_not_wrapped_twice() -> None:
    launched = {**TRAINER, "command": ["python3", "/pod-watcher/launch", "--", "python", "t.py"]}
    out = one(pod(launched))
    assert out["spec"]["containers"][0]["command"] == launched["command"]


def test_uninject_leaves_a_pod_without_pod_watcher_alone() -> None:
    source = pod(TRAINER, serviceAccountName="pod-watcher")
    assert uninject_documents([source], Options()).documents == [source]


def test_a_cron_job_s_pod_template_is_injected() -> None:
    import kubernetes_validate

    template = {"spec": pod(TRAINER)["spec"]}
    cron = {
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": template}}},
    }  # fmt: skip
    out = one(cron)
    spec = out["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert spec["initContainers"][0]["name"] == "pod-watcher"
    for version in ("1.35.0", "1.36.0"):
        kubernetes_validate.validate(out, version, strict=True)
    assert uninject_documents([out], Options()).documents == [cron]


def test_no_rbac_hint_when_the_service_account_comes_along() -> None:
    rbac = Path(__file__).resolve().parents[2] / "manifests" / "rbac.yaml"
    alone = inject(stdin=dump([pod(TRAINER)]))
    assert "service account 'pod-watcher' needs the Role" in alone.stderr
    together = inject(str(rbac), "-", stdin=dump([pod(TRAINER)]))
    assert together.returncode == 0 and together.stderr == ""
    assert [d["kind"] for d in load_all(together.stdout)][-1] == "Pod"


def test_api_none_is_idempotent_on_a_pod_that_has_the_account_itself() -> None:
    source = pod(TRAINER, serviceAccountName="pod-watcher", automountServiceAccountToken=False)
    once = one(source, Options(api="none"))
    assert once["spec"]["serviceAccountName"] == "pod-watcher"
    assert one(once, Options(api="none")) == once
    assert uninject_documents([once], Options(api="none")).documents == [source]
