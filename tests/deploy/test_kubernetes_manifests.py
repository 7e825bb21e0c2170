"""The Kustomize base in deploy/kubernetes: schema-valid, and consistent with the service.

No cluster is needed. The base is rendered here in Python (the resources listed in
kustomization.yaml plus its ``images:`` transform, the only transform it uses); where a
``kubectl`` or ``kustomize`` binary exists, a test checks that it renders the same.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

import yaml  # noqa: E402
import kubernetes_validate  # noqa: E402

from service.settings import Settings  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "kubernetes"
#: oldest Kubernetes the base is validated against, and the newest schema the package ships
K8S_VERSIONS = ["1.30.0", kubernetes_validate.latest_version()]


# ---------------------------------------------------------------- rendering


def _kustomization() -> dict:
    return yaml.safe_load((BASE / "kustomization.yaml").read_text())


def _split_image(image: str) -> tuple[str, str]:
    """``name[:tag|@digest]`` -> (name, rest); a registry port is not a tag."""
    if "@" in image:
        name, digest = image.split("@", 1)
        return name, "@" + digest
    slash = image.rfind("/")
    colon = image.rfind(":")
    if colon > slash:
        return image[:colon], image[colon:]
    return image, ""


def _set_images(doc: dict, images: list[dict]) -> None:
    spec = doc.get("spec", {}).get("template", {}).get("spec", {})
    for container in spec.get("containers", []) + spec.get("initContainers", []):
        name, rest = _split_image(container["image"])
        for entry in images:
            if entry["name"] != name:
                continue
            new = entry.get("newName", name)
            if "digest" in entry:
                rest = "@" + entry["digest"]
            elif "newTag" in entry:
                rest = ":" + str(entry["newTag"])
            container["image"] = new + rest


def render() -> list[dict]:
    kust = _kustomization()
    unsupported = set(kust) - {"apiVersion", "kind", "resources", "images"}
    assert not unsupported, f"this test's renderer does not apply {sorted(unsupported)}; extend it"
    docs = []
    for resource in kust["resources"]:
        for doc in yaml.safe_load_all((BASE / resource).read_text()):
            if doc:
                _set_images(doc, kust.get("images", []))
                docs.append(doc)
    return docs


@pytest.fixture(scope="module")
def docs() -> list[dict]:
    return render()


def one(docs: list[dict], kind: str) -> dict:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


@pytest.fixture(scope="module")
def deployment(docs) -> dict:
    return one(docs, "Deployment")


@pytest.fixture(scope="module")
def container(deployment) -> dict:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


@pytest.fixture(scope="module")
def config(docs) -> dict[str, str]:
    return one(docs, "ConfigMap")["data"]


def setting_names() -> set[str]:
    return {name.upper() for name in Settings.model_fields}


# ---------------------------------------------------------------- the base itself


def test_every_manifest_is_in_the_kustomization():
    listed = set(_kustomization()["resources"])
    present = {p.name for p in BASE.glob("*.y*ml")} - {"kustomization.yaml"}
    assert listed == present


def test_kinds(docs):
    kinds = {(d["apiVersion"], d["kind"]) for d in docs}
    assert kinds == {
        ("apps/v1", "Deployment"), ("v1", "Service"), ("v1", "ConfigMap"), ("v1", "Secret"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"), ("policy/v1", "PodDisruptionBudget"),
    }


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_schema_valid(docs, version):
    for doc in docs:
        # strict: unknown fields (typos) fail too
        kubernetes_validate.validate(doc, version, strict=True)


def test_image_tag_set_by_kustomization(container):
    raw = yaml.safe_load((BASE / "deployment.yaml").read_text())
    assert raw["spec"]["template"]["spec"]["containers"][0]["image"] == "rainclean"
    entry = next(e for e in _kustomization()["images"] if e["name"] == "rainclean")
    assert container["image"] == f"{entry.get('newName', 'rainclean')}:{entry['newTag']}"


def _kustomize_command() -> list[str] | None:
    if shutil.which("kustomize"):
        return ["kustomize", "build", str(BASE)]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize", str(BASE)]
    return None


@pytest.mark.skipif(_kustomize_command() is None, reason="neither kustomize nor kubectl is installed")
def test_renderer_agrees_with_kustomize(docs):
    out = subprocess.run(_kustomize_command(), capture_output=True, text=True, timeout=120, check=True).stdout
    theirs = [d for d in yaml.safe_load_all(out) if d]

    def key(d):
        return d["kind"], d["metadata"]["name"]

    assert sorted(theirs, key=key) == sorted(docs, key=key)


# ---------------------------------------------------------------- settings and wiring


def _env_names(container: dict, config: dict[str, str]) -> set[str]:
    return set(config) | {e["name"] for e in container.get("env", [])}


def test_env_names_are_settings(container, config):
    unknown = _env_names(container, config) - setting_names()
    assert not unknown, f"not read by service/settings.py: {sorted(unknown)}"


def test_every_setting_is_set_by_the_manifests(container, config):
    missing = setting_names() - _env_names(container, config)
    assert not missing, f"settings the manifests leave out: {sorted(missing)} (add them to configmap.yaml)"


def test_api_key_comes_from_the_secret(docs, container, config):
    assert "API_KEY" not in config
    env = {e["name"]: e for e in container["env"]}
    ref = env["API_KEY"]["valueFrom"]["secretKeyRef"]
    secret = one(docs, "Secret")
    assert ref["name"] == secret["metadata"]["name"]
    assert ref["key"] in secret.get("stringData", {}) | secret.get("data", {})
    # every other variable is plain configuration, from the ConfigMap
    assert all("secretKeyRef" not in e.get("valueFrom", {}) for n, e in env.items() if n != "API_KEY")
    refs = [s["configMapRef"]["name"] for s in container["envFrom"]]
    assert refs == [one(docs, "ConfigMap")["metadata"]["name"]]


def test_config_values_pass_settings_validation(config, monkeypatch):
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    for name, value in config.items():
        monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.port == int(config["PORT"])
    assert str(settings.model_path).startswith("/app/")  # the image's WORKDIR, not the source tree


def _probe_path(probe: dict) -> str:
    if "httpGet" in probe:
        return probe["httpGet"]["path"]
    command = probe["exec"]["command"]
    assert command[-1].startswith("/"), command
    return command[-1]


def test_probes_match_service_routes_and_port(container, config, docs):
    from service.app import create_app

    app = create_app(Settings(), configure_logging=False)
    get_routes = {r.path for r in app.routes if "GET" in (getattr(r, "methods", None) or ())}
    assert _probe_path(container["startupProbe"]) == "/ready"
    assert _probe_path(container["readinessProbe"]) == "/ready"
    assert _probe_path(container["livenessProbe"]) == "/health"
    assert {"/ready", "/health"} <= get_routes

    port_default = Settings.model_fields["port"].default
    (port,) = container["ports"]
    assert port["containerPort"] == port_default == int(config["PORT"])
    assert container["livenessProbe"]["httpGet"]["port"] in (port["name"], port["containerPort"])
    service = one(docs, "Service")
    assert service["spec"]["ports"][0]["targetPort"] in (port["name"], port["containerPort"])


class _Handler(BaseHTTPRequestHandler):
    status = 200
    key = "s3cret"

    def do_GET(self):  # noqa: N802
        ok = self.path == "/ready" and self.headers.get("Authorization") == f"Bearer {self.key}"
        self.send_response(self.status if ok else 401)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.mark.parametrize("status, key, ok", [(200, "s3cret", True), (200, "wrong", False), (503, "s3cret", False)])
def test_exec_probe_sends_the_api_key(container, status, key, ok):
    """The /ready probes run a script in the container; check what it does against a stub server."""
    handler = type("H", (_Handler,), {"status": status})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        command = container["readinessProbe"]["exec"]["command"]
        assert command[0] == "python"
        env = {"PORT": str(server.server_port), "API_KEY": key}
        rc = subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, timeout=30).returncode
    finally:
        server.shutdown()
        server.server_close()
    assert (rc == 0) is ok


def test_selectors_match_pod_labels(docs, deployment):
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()
    assert one(docs, "Service")["spec"]["selector"].items() <= labels.items()
    assert one(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    target = one(docs, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])


# ---------------------------------------------------------------- security, resources, shutdown


def test_security_context(deployment, container):
    pod = deployment["spec"]["template"]["spec"]
    uid = int(re.search(r"useradd\s+--uid\s+(\d+)", (ROOT / "Dockerfile").read_text()).group(1))
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == uid
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["capabilities"]["drop"] == ["ALL"]
    assert not sc["capabilities"].get("add")
    # the one writable path is /tmp, on an emptyDir (tempfile and spooled uploads need it)
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]]
    assert all(m.get("readOnly") or "emptyDir" in volumes[m["name"]] for m in mounts.values())


def _cpu(quantity: str | int) -> float:
    q = str(quantity)
    return int(q[:-1]) / 1000 if q.endswith("m") else float(q)


def test_resources_fit_the_concurrency(container, config):
    resources = container["resources"]
    for part in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[part])
    # one onnxruntime thread per concurrent request, one core each
    threads = int(config["MAX_CONCURRENCY"]) * int(config["ORT_INTRA_OP_THREADS"])
    assert int(config["ORT_INTRA_OP_THREADS"]) > 0, "0 = auto counts the node's CPUs, not the pod's"
    assert _cpu(resources["requests"]["cpu"]) == _cpu(resources["limits"]["cpu"]) == threads


def _model_seconds_per_audio_second() -> float:
    """The shipped model's measured CPU seconds per audio second (evaluation report behind the model card)."""
    report = json.loads((ROOT / "models" / "evaluation" / "report.json").read_text())
    return float(report["systems"]["model"]["cpu_s_per_audio_s"])


def test_grace_period_covers_the_longest_request(deployment, container, config):
    pod = deployment["spec"]["template"]["spec"]
    grace = pod["terminationGracePeriodSeconds"]
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    sleep = float(pre_stop[1])
    assert sleep >= 5, "the endpoint removal needs time to reach the proxies before SIGTERM"
    # one channel at a time, one onnxruntime thread per request: wall ~ CPU seconds
    longest = float(config["QUEUE_TIMEOUT"]) + int(config["MAX_CHANNELS"]) * float(
        config["MAX_DURATION_SECONDS"]) * _model_seconds_per_audio_second()
    # the service waits SHUTDOWN_TIMEOUT for admitted requests after SIGTERM: it must cover the
    # longest request, and the pod's grace period must cover the preStop sleep plus that wait
    shutdown = float(config["SHUTDOWN_TIMEOUT"])
    assert shutdown >= longest, (shutdown, longest)
    assert grace >= sleep + shutdown, (grace, sleep, shutdown)


def test_autoscaler_and_disruption_budget(docs):
    hpa = one(docs, "HorizontalPodAutoscaler")["spec"]
    (metric,) = hpa["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert 1 < hpa["minReplicas"] <= hpa["maxReplicas"]
    pdb = one(docs, "PodDisruptionBudget")["spec"]
    assert pdb["minAvailable"] < hpa["minReplicas"], "a drain must be able to evict one pod"
