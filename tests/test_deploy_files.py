"""The deployment files under deploy/ (Dockerfile, docker-compose.yaml, Helm values, dagster.yaml).

They cannot be run where these tests run (no Docker engine, no Kubernetes), so these checks are the
ones that need no servers: every YAML file loads; deploy/dagster.yaml is what the code renders and is a
valid Dagster instance; its settings, the Celery settings, the worker command and the code location are
the ones `marquee cluster up` runs (marquee/orchestration/cluster.py), except for addresses and
secrets; the Helm values render to the same queue, pool, monitoring and retry settings (translated the
way the chart's templates do); and every image and version is pinned and agrees with pyproject.toml.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import runpy
import tomllib
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import yaml

from marquee.orchestration import cluster
from marquee.orchestration.instance import EXECUTOR_ENV, cluster_instance_config

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
IMAGE_DAGSTER_HOME = "/opt/dagster/dagster_home"
#: The compose services that run the Marquee image.
MARQUEE_SERVICES = ("dagster-init", "webserver", "daemon", "worker")
#: Where the two deployments may differ in deploy/dagster.yaml: addresses and secrets.
ENDPOINT_FIELDS = (
    ("storage", "postgres", "postgres_db", "hostname"),
    ("storage", "postgres", "postgres_db", "port"),
    ("storage", "postgres", "postgres_db", "password"),
    ("run_launcher", "config", "broker"),
    ("run_launcher", "config", "backend"),
)


def _load_render():
    spec = importlib.util.spec_from_file_location("marquee_deploy_render", DEPLOY / "render.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render = _load_render()


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _pin(requirement_name: str, requirements: list[str]) -> str:
    """The exact version ``name==X`` pins in a list of requirement strings."""
    for req in requirements:
        m = re.fullmatch(rf"{re.escape(requirement_name)}==([\w.]+)", req.split(";")[0].strip())
        if m:
            return m.group(1)
    raise AssertionError(f"{requirement_name} is not pinned with == in {requirements}")


def _compose_default(value: str) -> str:
    """A compose value with ``${VAR:-default}``/``${VAR-default}`` replaced by the default."""
    return re.sub(r"\$\{[A-Z0-9_]+:?-([^}]*)\}", r"\1", value)


def _assert_pinned(image: str) -> None:
    name, _, tag = image.rpartition(":")
    assert name and "/" not in tag, f"image {image!r} has no tag"
    assert tag and tag != "latest", f"image {image!r} is not pinned"


def _local_state(home: Path) -> cluster.ClusterState:
    """What `marquee cluster up` records, with the compose file's worker count (no server started)."""
    return cluster.ClusterState(
        home=str(home),
        cluster_id="test-deploy-files",
        ports={"postgres": 55432, "redis": 56379, "webserver": 53000, "s3": 58333},
        postgres_password="local-secret",
        s3_access_key="local-key",
        s3_secret_key="local-secret-key",
        workers=render.WORKERS,
        model_slots=render.MODEL_SLOTS,
    )


@pytest.fixture
def local(tmp_path: Path) -> cluster.ClusterState:
    """The files `marquee cluster up` writes for its Dagster processes, written for real."""
    state = _local_state(tmp_path)
    cluster._write_dagster_files(state)
    return state


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return _yaml(DEPLOY / "docker-compose.yaml")


@pytest.fixture(scope="module")
def helm() -> dict[str, Any]:
    return _yaml(DEPLOY / "helm" / "values.yaml")


@pytest.fixture(scope="module")
def deploy_instance() -> dict[str, Any]:
    return _yaml(DEPLOY / "dagster.yaml")


# ---- every file -------------------------------------------------------------------------------------
def test_every_yaml_file_under_deploy_loads():
    found = sorted(p.relative_to(DEPLOY).as_posix() for p in DEPLOY.rglob("*.y*ml"))
    for expected in ("dagster.yaml", "workspace.yaml", "docker-compose.yaml", "helm/values.yaml"):
        assert expected in found
    for name in found:
        assert isinstance(_yaml(DEPLOY / name), dict), f"{name} is not a YAML mapping"


# ---- dagster.yaml -----------------------------------------------------------------------------------
def test_dagster_yaml_is_what_the_code_renders(deploy_instance):
    assert (DEPLOY / "dagster.yaml").read_text() == render.render(), (
        "deploy/dagster.yaml is out of date: run .venv/bin/python deploy/render.py"
    )
    assert render.main(["--check"]) == 0
    assert deploy_instance == cluster_instance_config(
        render.ENDPOINTS, max_concurrent_runs=render.WORKERS, model_slots=render.MODEL_SLOTS
    )
    assert (DEPLOY / "dagster.yaml").read_text().startswith("# GENERATED by deploy/render.py")


def test_render_check_fails_on_a_stale_file(tmp_path):
    stale = tmp_path / "dagster.yaml"
    stale.write_text(render.render(workers=3))
    assert render.main(["--check", "--output", str(stale)]) == 1
    assert render.main(["--output", str(stale)]) == 0
    assert render.main(["--check", "--output", str(stale)]) == 0


def test_dagster_yaml_is_a_valid_dagster_instance(deploy_instance, monkeypatch):
    from dagster._config import process_config, validate_config
    from dagster._core.instance.config import dagster_instance_config_schema
    from dagster_celery.launcher import CeleryRunLauncher
    from dagster_postgres.utils import pg_config

    schema = dagster_instance_config_schema()
    result = validate_config(schema, deploy_instance)
    assert result.success, [e.message for e in result.errors or []]
    launcher = deploy_instance["run_launcher"]
    assert (launcher["module"], launcher["class"]) == ("dagster_celery.launcher", "CeleryRunLauncher")
    assert validate_config(CeleryRunLauncher.config_type(), launcher["config"]).success
    assert validate_config(pg_config(), deploy_instance["storage"]["postgres"]).success
    # The environment references resolve once the compose file's variables are set.
    for name in _env_references(deploy_instance):
        monkeypatch.setenv(name, f"value-of-{name}")
    resolved = process_config(schema, deploy_instance)
    assert resolved.success, [e.message for e in resolved.errors or []]
    pg = resolved.value["storage"]["postgres"]["postgres_db"]
    assert pg["password"] == "value-of-DAGSTER_PG_PASSWORD"


def _env_references(node: Any) -> set[str]:
    if isinstance(node, dict):
        if set(node) == {"env"}:
            return {node["env"]}
        return set().union(*(_env_references(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_env_references(v) for v in node))
    return set()


def _without_endpoints(config: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(config)
    for *parents, leaf in ENDPOINT_FIELDS:
        node = config
        for key in parents:
            node = node[key]
        del node[leaf]
    return config


def test_dagster_yaml_is_the_local_deployments_but_for_addresses_and_secrets(local, deploy_instance):
    local_instance = _yaml(local.dagster_home / "dagster.yaml")
    # The parts the issue names, for a readable failure ...
    assert deploy_instance["run_launcher"]["class"] == local_instance["run_launcher"]["class"]
    assert deploy_instance["run_launcher"]["module"] == local_instance["run_launcher"]["module"]
    pg, local_pg = (c["storage"]["postgres"]["postgres_db"] for c in (deploy_instance, local_instance))
    assert pg["scheme"] == local_pg["scheme"] == "postgresql+psycopg2"
    for key in ("run_monitoring", "run_retries", "concurrency", "telemetry"):
        assert deploy_instance[key] == local_instance[key], key
    # ... and everything else too: only the endpoint fields may differ.
    assert _without_endpoints(deploy_instance) == _without_endpoints(local_instance)
    assert pg["hostname"] == "postgres" and local_pg["hostname"] == "127.0.0.1"
    assert pg["password"] == {"env": "DAGSTER_PG_PASSWORD"}


def test_celery_config_module_is_the_local_deployments(local, monkeypatch):
    local_module = runpy.run_path(str(Path(local.home) / "celery" / "dagster_celery_config.py"))
    monkeypatch.setenv("DAGSTER_CELERY_BROKER_URL", "redis://broker/0")
    monkeypatch.setenv("DAGSTER_CELERY_BACKEND_URL", "redis://broker/1")
    deploy_module = runpy.run_path(str(DEPLOY / "dagster_celery_config.py"))

    def settings(module: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in module.items() if not k.startswith("_") and not callable(v) and k != "os"}

    ours, theirs = settings(deploy_module), settings(local_module)
    assert (ours.pop("broker_url"), ours.pop("result_backend")) == ("redis://broker/0", "redis://broker/1")
    assert theirs.pop("broker_url") == local.endpoints().broker_url
    assert theirs.pop("result_backend") == local.endpoints().result_backend_url
    assert ours == theirs
    monkeypatch.delenv("DAGSTER_CELERY_BROKER_URL")
    with pytest.raises(RuntimeError, match="DAGSTER_CELERY_BROKER_URL"):
        runpy.run_path(str(DEPLOY / "dagster_celery_config.py"))


def test_workspace_loads_the_local_deployments_code_location(local):
    (ours,) = _yaml(DEPLOY / "workspace.yaml")["load_from"]
    (theirs,) = _yaml(local.dagster_home / "workspace.yaml")["load_from"]
    for key in ("module_name", "attribute"):
        assert ours["python_module"][key] == theirs["python_module"][key]


# ---- docker-compose.yaml ----------------------------------------------------------------------------
def test_compose_services_and_pinned_images(compose):
    services = compose["services"]
    for name in ("postgres", "redis", "minio", "minio-init", "dagster-init", "webserver", "daemon", "worker"):
        assert name in services, name
    for name, service in services.items():
        _assert_pinned(_compose_default(service["image"]))
        if name in MARQUEE_SERVICES:
            assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    assert _compose_default(services["webserver"]["image"]) == f"marquee:{PYPROJECT['project']['version']}"
    assert services["postgres"]["image"].startswith("postgres:15")
    assert services["redis"]["image"].startswith("redis:7.2")
    assert re.search(r"minio/minio:RELEASE\.", services["minio"]["image"])
    assert re.search(r"minio/mc:RELEASE\.", services["minio-init"]["image"])


def _captured_commands(state: cluster.ClusterState, monkeypatch) -> dict[str, list[str]]:
    """The commands `marquee cluster up` starts its worker, daemon and webserver with (none started)."""
    started: dict[str, list[str]] = {}

    def spawn(name: str, cmd: list[str], env: dict[str, str], home: Path, cwd: Path | None = None):
        started[name] = cmd
        return cluster.Process(pid=0, start_time=0, log=str(home / "logs" / f"{name}.log"))

    monkeypatch.setattr(cluster, "_spawn", spawn)
    monkeypatch.setattr(cluster, "_wait_for", lambda *args, **kwargs: None)
    cluster._start_worker(state, 1)
    cluster._start_daemon(state)
    cluster._start_webserver(state)
    return {"worker": started["worker-1"], "daemon": started["daemon"], "webserver": started["webserver"]}


def _flags(cmd: list[str], values_ignored: tuple[str, ...]) -> list[str]:
    """The command's arguments with the values of ``values_ignored`` options blanked."""
    out = []
    for i, arg in enumerate(cmd):
        out.append("<value>" if i and cmd[i - 1] in values_ignored else arg)
    return out


def test_compose_commands_are_the_local_deployments(compose, tmp_path, monkeypatch):
    local_cmds = _captured_commands(_local_state(tmp_path), monkeypatch)
    services = compose["services"]
    # Worker: `python -m celery ...` locally, the `celery` script in the image; same arguments.
    ours = services["worker"]["command"]
    theirs = local_cmds["worker"][local_cmds["worker"].index("celery") :]
    assert ours[0] == theirs[0] == "celery"
    for flag in ("--concurrency=1", "--prefetch-multiplier=1", "-A", "dagster_celery.app", "-Q", "dagster"):
        assert flag in ours
    assert _flags(ours, ("-n",)) == _flags(theirs, ("-n",))
    worker_name = ours[ours.index("-n") + 1]
    assert worker_name.startswith("marquee-") and worker_name.endswith("@%h")
    # Daemon and webserver: same programs and options; the paths and address are the container's.
    workspace = f"{IMAGE_DAGSTER_HOME}/workspace.yaml"
    for name, program in (("daemon", "dagster-daemon"), ("webserver", "dagster-webserver")):
        ours, theirs = services[name]["command"], local_cmds[name]
        assert ours[0] == Path(theirs[0]).name == program
        assert _flags(ours[1:], ("-w", "-h", "-p")) == _flags(theirs[1:], ("-w", "-h", "-p"))
        assert ours[ours.index("-w") + 1] == workspace
    web = services["webserver"]["command"]
    assert web[web.index("-h") + 1] == "0.0.0.0" and web[web.index("-p") + 1] == "3000"
    assert any(str(p).endswith(":3000") for p in services["webserver"]["ports"])


def test_compose_environment_is_the_local_deployments(compose, deploy_instance, tmp_path):
    services = compose["services"]
    state = _local_state(tmp_path)
    # The image sets DAGSTER_HOME and MARQUEE_HOME (ENV in the Dockerfile); the rest comes from compose.
    expected = (set(state.client_env()) - {"DAGSTER_HOME", "MARQUEE_HOME"}) | {EXECUTOR_ENV}
    expected |= set(cluster.MODEL_SETTINGS) | _env_references(deploy_instance)
    for name in MARQUEE_SERVICES:
        env = services[name]["environment"]
        assert expected <= set(env), f"{name} lacks {sorted(expected - set(env))}"
        assert env[EXECUTOR_ENV] == "in_process"
        assert _compose_default(env["MARQUEE_STORAGE"]).startswith("s3://")
        assert "@redis:6379/" in env["DAGSTER_CELERY_BROKER_URL"]
        assert env["DAGSTER_CELERY_BROKER_URL"] != env["DAGSTER_CELERY_BACKEND_URL"]
        assert f"./dagster.yaml:{IMAGE_DAGSTER_HOME}/dagster.yaml:ro" in _compose_default(
            " ".join(services[name]["volumes"])
        )
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    assert re.search(rf"DAGSTER_HOME={IMAGE_DAGSTER_HOME}\b", dockerfile)
    assert re.search(r"MARQUEE_HOME=/\S+", dockerfile)
    # The services the instance and the environment name are the ones compose runs.
    pg = deploy_instance["storage"]["postgres"]["postgres_db"]
    assert pg["hostname"] in services and pg["port"] == 5432
    pg_env = services["postgres"]["environment"]
    assert (pg_env["POSTGRES_USER"], pg_env["POSTGRES_DB"]) == (pg["username"], pg["db_name"])
    assert pg_env["POSTGRES_PASSWORD"] == services["webserver"]["environment"]["DAGSTER_PG_PASSWORD"]
    redis_cmd = services["redis"]["command"]
    assert redis_cmd[redis_cmd.index("--appendonly") + 1] == "yes"  # as `marquee cluster up`'s Redis
    bucket = _compose_default(services["webserver"]["environment"]["MARQUEE_STORAGE"]).split("/")[2]
    assert _compose_default(services["minio-init"]["command"][-1]) == f"local/{bucket}"
    assert _compose_default(services["webserver"]["environment"]["MARQUEE_S3_ENDPOINT_URL"]) == (
        "http://minio:9000"
    )


def test_compose_workers_match_the_instances_run_limit(compose, deploy_instance):
    replicas = compose["services"]["worker"]["deploy"]["replicas"]
    assert replicas == render.WORKERS == deploy_instance["concurrency"]["runs"]["max_concurrent_runs"]


def test_compose_start_order_and_healthchecks(compose):
    services = compose["services"]
    ready = {
        "dagster-init": "service_completed_successfully",
        "redis": "service_healthy",
        "minio-init": "service_completed_successfully",
    }
    for name in ("webserver", "daemon", "worker"):
        deps = services[name]["depends_on"]
        assert {k: v["condition"] for k, v in deps.items()} == ready, name
    assert services["dagster-init"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["dagster-init"]["command"] == ["dagster", "instance", "migrate"]
    assert services["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"
    for name, service in services.items():
        for dep, spec in service.get("depends_on", {}).items():
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits for {dep}'s health, which has no check"
    for name in ("postgres", "redis", "minio", "webserver", "daemon", "worker"):
        assert services[name]["healthcheck"]["test"], name


def test_compose_required_variables_are_in_env_example():
    text = (DEPLOY / "docker-compose.yaml").read_text()
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))
    assert {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "S3_ACCESS_KEY", "S3_SECRET_KEY"} <= required
    example = (DEPLOY / "env.example").read_text()
    listed = set(re.findall(r"^([A-Z0-9_]+)=", example, flags=re.M))
    assert required <= listed, f"env.example lacks {sorted(required - listed)}"
    assert ".env" in (DEPLOY / ".gitignore").read_text().split()


# ---- Helm values ------------------------------------------------------------------------------------
def test_helm_chart_and_images_are_pinned_to_the_installed_dagster(helm):
    dagster_version = version("dagster")
    assert dagster_version == _pin("dagster", PYPROJECT["project"]["dependencies"]) == "1.13.27"
    for component in ("dagsterWebserver", "dagsterDaemon"):
        image = helm[component]["image"]
        assert image["tag"] == dagster_version, component
        assert image["repository"].endswith("dagster/dagster-celery-k8s")
    for path in (DEPLOY / "helm" / "values.yaml", DEPLOY / "README.md"):
        versions = re.findall(r"helm upgrade --install \S+ dagster/dagster --version (\S+)", path.read_text())
        assert versions and set(versions) == {dagster_version}, path
    (deployment,) = helm["dagster-user-deployments"]["deployments"]
    image = deployment["image"]
    _assert_pinned(f"{image['repository']}:{image['tag']}")
    assert image["tag"] == PYPROJECT["project"]["version"]


def test_helm_runs_marquee_as_the_other_deployments_do(helm, deploy_instance):
    assert helm["runLauncher"]["type"] == "K8sRunLauncher"
    launcher = helm["runLauncher"]["config"]["k8sRunLauncher"]
    (deployment,) = helm["dagster-user-deployments"]["deployments"]
    assert helm["dagster-user-deployments"]["enabled"] is True
    args = deployment["dagsterApiGrpcArgs"]
    (location,) = _yaml(DEPLOY / "workspace.yaml")["load_from"]
    assert args[args.index("--module-name") + 1] == location["python_module"]["module_name"]
    assert args[args.index("--attribute") + 1] == location["python_module"]["attribute"]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    env = {e["name"]: e["value"] for e in deployment["env"]}
    assert env[EXECUTOR_ENV] == "in_process"
    assert {"name": "marquee-s3"} in deployment["envSecrets"]
    assert {"name": "marquee-s3"} in launcher["envSecrets"]
    # Postgres: external, its password from a secret the operator creates, the same driver.
    assert helm["postgresql"]["enabled"] is False
    assert helm["generatePostgresqlPasswordSecret"] is False and helm["global"]["postgresqlSecretName"]
    pg = deploy_instance["storage"]["postgres"]["postgres_db"]
    assert helm["postgresql"]["postgresqlScheme"] == pg["scheme"]
    assert (helm["postgresql"]["postgresqlUsername"], helm["postgresql"]["postgresqlDatabase"]) == (
        pg["username"],
        pg["db_name"],
    )


def _helm_instance_parts(values: dict[str, Any]) -> dict[str, Any]:
    """The dagster.yaml sections the chart renders from ``values``, following its templates
    (configmap-instance.yaml, helpers/instance/_concurrency.tpl and _run-coordinator.tpl)."""
    daemon = values["dagsterDaemon"]
    parts: dict[str, Any] = {"telemetry": {"enabled": values["telemetry"]["enabled"]}}
    coordinator = daemon["runCoordinator"]
    if daemon.get("enabled", True) and coordinator["enabled"]:
        assert coordinator["type"] == "QueuedRunCoordinator"
        queued = coordinator["config"]["queuedRunCoordinator"] or {}
        parts["run_coordinator"] = {"module": "dagster.core.run_coordinator", "class": "QueuedRunCoordinator"}
        if any(v is not None for v in queued.values()):
            parts["run_coordinator"]["config"] = queued
    mon = daemon["runMonitoring"]
    if mon["enabled"]:
        parts["run_monitoring"] = {
            "enabled": True,
            "start_timeout_seconds": mon["startTimeoutSeconds"],
            "poll_interval_seconds": mon["pollIntervalSeconds"],
        }
        if mon.get("maxResumeRunAttempts"):  # the template renders it only when truthy
            parts["run_monitoring"]["max_resume_run_attempts"] = mon["maxResumeRunAttempts"]
    retries = daemon["runRetries"]
    if retries["enabled"]:
        parts["run_retries"] = {"enabled": True}
        if retries.get("maxRetries"):
            parts["run_retries"]["max_retries"] = retries["maxRetries"]
    conc = values["concurrency"]
    if conc["enabled"]:
        pools, runs = conc.get("pools", {}), conc.get("runs", {})
        parts["concurrency"] = {}
        if pools.get("defaultLimit") is not None:
            parts["concurrency"]["pools"] = {"default_limit": pools["defaultLimit"]}
        if runs.get("maxConcurrentRuns") is not None or runs.get("tagConcurrencyLimits"):
            parts["concurrency"]["runs"] = {}
            if runs.get("maxConcurrentRuns") is not None:
                parts["concurrency"]["runs"]["max_concurrent_runs"] = runs["maxConcurrentRuns"]
            if runs.get("tagConcurrencyLimits"):
                parts["concurrency"]["runs"]["tag_concurrency_limits"] = [
                    {"key": t["key"], **({"value": t["value"]} if "value" in t else {}), "limit": t["limit"]}
                    for t in runs["tagConcurrencyLimits"]
                ]
    return parts


def test_helm_instance_settings_are_the_local_deployments(helm):
    from dagster import DagsterInstance
    from dagster._config import validate_config
    from dagster._core.instance.config import dagster_instance_config_schema

    parts = _helm_instance_parts(helm)
    assert validate_config(dagster_instance_config_schema(), parts).success
    # The chart refuses run limits in both the run coordinator and `concurrency`: they are in the latter.
    assert "config" not in parts["run_coordinator"]
    runs = parts["concurrency"]["runs"]
    expected = cluster_instance_config(
        render.ENDPOINTS,
        max_concurrent_runs=runs["max_concurrent_runs"],
        model_slots=parts["concurrency"]["pools"]["default_limit"],
    )
    # The chart leaves out a zero max_resume_run_attempts; Dagster's default is that same zero.
    with DagsterInstance.ephemeral(settings={"run_monitoring": {"enabled": True}}) as instance:
        default_resume = instance.run_monitoring_max_resume_run_attempts
    assert default_resume == expected["run_monitoring"]["max_resume_run_attempts"] == 0
    parts["run_monitoring"].setdefault("max_resume_run_attempts", default_resume)
    for key in ("concurrency", "run_monitoring", "run_retries", "telemetry"):
        assert parts[key] == expected[key], key


# ---- Dockerfile -------------------------------------------------------------------------------------
def test_dockerfile_installs_the_cluster_extra_and_the_deploy_files():
    text = (DEPLOY / "Dockerfile").read_text()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, flags=re.M)
    assert base and re.fullmatch(r"python:3\.11\.\d+-slim-bookworm", base.group(1)), "pin the base image"
    assert re.search(r"^FROM \$\{PYTHON_IMAGE\}$", text, flags=re.M)
    assert 'pip install ".[cluster]"' in text
    # dagster-k8s (for the K8s run pods) at the pin of the other dagster-* integrations.
    cluster_extra = PYPROJECT["project"]["optional-dependencies"]["cluster"]
    assert f'"dagster-k8s=={_pin("dagster-celery", cluster_extra)}"' in text
    # torch/torchvision pins are read from pyproject.toml, never written twice.
    instructions = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    assert "torch==" not in instructions and "torchvision==" not in instructions
    # What scripts/setup.sh installs without dependencies, the image installs too.
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    for req in sorted(set(re.findall(r"requirements/[\w.-]+\.txt", setup))):
        assert f"-r {req}" in text, req
    assert re.search(r"^COPY deploy/dagster\.yaml deploy/workspace\.yaml \$\{DAGSTER_HOME\}/$", text, re.M)
    pythonpath = re.search(r"PYTHONPATH=(\S+)", text)
    assert pythonpath and f"COPY deploy/dagster_celery_config.py {pythonpath.group(1)}/" in text
    assert re.search(r"^USER \S+$", text, flags=re.M), "the image runs as an unprivileged user"


def test_dockerignore_keeps_what_the_dockerfile_copies():
    text = (DEPLOY / "Dockerfile").read_text()
    copied = set()
    for line in re.findall(r"^COPY (.+)$", text, flags=re.M):
        copied |= {p.rstrip("/") for p in line.split()[:-1]}
    kept = {line[1:].rstrip("/") for line in (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()}
    assert copied <= kept, f"the build context lacks {sorted(copied - kept)}"
    for path in copied:
        assert (ROOT / path).exists(), path


# ---- README -----------------------------------------------------------------------------------------
def test_readme_says_what_was_not_run_and_how_to_run_it():
    text = (DEPLOY / "README.md").read_text()
    assert "not run here" in text
    assert "tests/test_deploy_files.py" in text
    assert "docker compose -f deploy/docker-compose.yaml" in text and "--scale worker=" in text
    for secret in ("marquee-postgresql", "marquee-s3"):
        assert secret in text
