"""docker-compose.yml and the Dockerfile, checked without docker (this machine has no docker
daemon and no compose plugin, so `docker compose config` cannot run here): the files parse, and
the wiring between the service, its volume and SearxNG, and in the `milvus` profile between the
service, Milvus standalone, etcd and MinIO, is what the settings and those images expect."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml
from pydantic import ValidationError

from service.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def environment(service: dict) -> dict[str, str]:
    """A service's environment, written as a mapping or as a list of NAME=value."""
    env = service.get("environment", {})
    return dict(e.split("=", 1) for e in env) if isinstance(env, list) else {k: str(v) for k, v in env.items()}


def loaded(env: dict[str, str]) -> Settings:
    """Settings built from a service's RAGPAUSE_* variables (those compose fills in left out)."""
    given = {k: v for k, v in env.items() if k.startswith("RAGPAUSE_") and "${" not in v}
    return Settings(**{k.removeprefix("RAGPAUSE_").lower(): v for k, v in given.items()})


MILVUS_PROFILE = {"ragpause-milvus", "milvus", "etcd", "minio"}


def test_compose_wires_the_service_to_searxng_and_its_volume() -> None:
    services = compose()["services"]
    app, searx = services["ragpause"], services["searxng"]
    env = app["environment"]
    # Every RAGPAUSE_* variable is a real setting, and they load together.
    fields = Settings.variables()
    assert {k for k in env if k.startswith("RAGPAUSE_")} <= fields
    # The web search URL names the searxng service on the port it listens on.
    url = urlparse(env["RAGPAUSE_WEB_SEARCH_URL"])
    assert url.hostname == "searxng" and env["RAGPAUSE_WEB_SEARCH_KIND"] == "searxng"
    searx_settings_dir = next(v.split(":")[0] for v in searx["volumes"] if v.split(":")[1] == "/etc/searxng")
    searx_settings = yaml.safe_load((REPO / searx_settings_dir / "settings.yml").read_text())
    assert url.port == searx_settings["server"]["port"] and str(url.port) in searx["expose"]
    assert "json" in searx_settings["search"]["formats"]  # the service reads format=json
    assert "searxng" in app["depends_on"]
    # The data directory is the named volume, declared at the top level.
    mounts = dict(v.split(":")[:2] for v in app["volumes"])
    assert mounts.get("ragpause-data") == env["RAGPAUSE_DATA_DIR"] and "ragpause-data" in compose()["volumes"]
    # The service listens on all interfaces on the published port, and the healthcheck asks /health.
    assert env["RAGPAUSE_HOST"] == "0.0.0.0" and f"{env['RAGPAUSE_PORT']}:{env['RAGPAUSE_PORT']}" in app["ports"]
    assert "/health" in " ".join(app["healthcheck"]["test"])
    settings = loaded(env)
    assert settings.retrieval.web_search_url == env["RAGPAUSE_WEB_SEARCH_URL"] and str(settings.data_dir) == "/data"
    assert "RAGPAUSE_INDEX" not in env  # the default `up` keeps the embedded index


def test_the_milvus_profile_is_opt_in_and_the_default_up_unchanged() -> None:
    services = compose()["services"]
    assert MILVUS_PROFILE <= services.keys()
    for name, service in services.items():
        if name in MILVUS_PROFILE:
            assert service["profiles"] == ["milvus"], name
        else:
            assert "profiles" not in service, name  # `docker compose up` starts exactly these
    assert services.keys() - MILVUS_PROFILE == {"ragpause", "searxng"}


def test_the_milvus_profile_wires_the_service_to_milvus_standalone() -> None:
    data = compose()
    services = data["services"]
    app, milvus, etcd, minio = (services[n] for n in ("ragpause-milvus", "milvus", "etcd", "minio"))
    env = environment(app)
    # Every RAGPAUSE_* variable is a real setting, and together they select Milvus at that URI.
    assert {k for k in env if k.startswith("RAGPAUSE_")} <= Settings.variables()
    settings = loaded(env)
    assert settings.retrieval.index == "milvus" and settings.milvus_location() == env["RAGPAUSE_MILVUS_URI"]
    # The URI names the milvus service on the port Milvus serves (19530), open on the network.
    uri = urlparse(env["RAGPAUSE_MILVUS_URI"])
    assert uri.scheme == "http" and uri.hostname == "milvus" and uri.port == 19530
    assert str(uri.port) in milvus["expose"] and "ports" not in milvus
    assert milvus["command"] == ["milvus", "run", "standalone"]
    # A tag, not `latest`, of a release with BM25 full-text search (Milvus >= 2.5).
    repository, tag = milvus["image"].rsplit(":", 1)
    assert repository == "milvusdb/milvus" and tuple(int(n) for n in tag.lstrip("v").split(".")[:2]) >= (2, 5)
    # The service starts once Milvus answers its health check, and Milvus once etcd and MinIO do.
    assert app["depends_on"]["milvus"]["condition"] == "service_healthy"
    assert {n: d["condition"] for n, d in milvus["depends_on"].items()} == {
        "etcd": "service_healthy",
        "minio": "service_healthy",
    }
    # Milvus finds etcd and MinIO by service name, on the ports they listen on.
    milvus_env = environment(milvus)
    assert milvus_env["ETCD_ENDPOINTS"] == "etcd:2379" and milvus_env["MINIO_ADDRESS"] == "minio:9000"
    assert "-listen-client-urls http://0.0.0.0:2379" in etcd["command"] and "2379" in etcd["expose"]
    assert "-advertise-client-urls=http://etcd:2379" in etcd["command"]
    assert "--address" not in minio["command"] and "9000" in minio["expose"]  # MinIO's default API port
    # No part of Milvus is published to the host.
    assert not any("ports" in services[n] for n in ("milvus", "etcd", "minio"))
    for service in (milvus, etcd, minio):
        assert ":" in service["image"] and not service["image"].endswith(":latest")


def test_the_milvus_profile_keeps_its_data_on_declared_volumes_and_checks_health() -> None:
    data = compose()
    services = data["services"]
    app = services["ragpause-milvus"]
    env = environment(app)
    mounts = {n: dict(v.split(":")[:2] for v in services[n]["volumes"]) for n in MILVUS_PROFILE}
    for name, mounted in mounts.items():
        for volume in mounted:
            assert volume in data["volumes"], (name, volume)
    # Each store writes where its volume is mounted.
    assert mounts["milvus"] == {"milvus-data": "/var/lib/milvus"}
    assert f"--data-dir {mounts['etcd']['milvus-etcd']}" in services["etcd"]["command"]
    assert services["minio"]["command"] == f"minio server {mounts['minio']['milvus-minio']}"
    # The service's data dir (ingestion jobs, caches) is its own volume, never the default service's.
    assert mounts["ragpause-milvus"] == {"ragpause-milvus-data": env["RAGPAUSE_DATA_DIR"]}
    assert "ragpause-milvus-data" not in dict(v.split(":")[:2] for v in services["ragpause"]["volumes"])
    # Every container of the profile has a health check; each asks the port its service serves.
    for name in MILVUS_PROFILE:
        assert services[name]["healthcheck"]["test"][0] == "CMD", name
    health = " ".join(app["healthcheck"]["test"])
    assert f"127.0.0.1:{env['RAGPAUSE_PORT']}/health" in health
    assert "localhost:9091/healthz" in " ".join(services["milvus"]["healthcheck"]["test"])
    assert "9091" in services["milvus"]["expose"]
    assert "localhost:9000/minio/health" in " ".join(services["minio"]["healthcheck"]["test"])
    assert services["etcd"]["healthcheck"]["test"] == ["CMD", "etcdctl", "endpoint", "health"]


def test_the_milvus_service_is_the_same_image_under_the_same_key_rule() -> None:
    services = compose()["services"]
    app, default = services["ragpause-milvus"], services["ragpause"]
    env, default_env = environment(app), environment(default)
    assert app["build"] == default["build"]
    # Only where it listens and where its index is differ from the default service.
    differing = {k for k in env.keys() | default_env.keys() if env.get(k) != default_env.get(k)}
    assert differing == {"RAGPAUSE_PORT", "RAGPAUSE_INDEX", "RAGPAUSE_MILVUS_URI"}
    assert f"{env['RAGPAUSE_PORT']}:{env['RAGPAUSE_PORT']}" in app["ports"]
    assert env["RAGPAUSE_PORT"] != default_env["RAGPAUSE_PORT"]  # both can run side by side
    assert env["RAGPAUSE_HOST"] == "0.0.0.0" and ":?" in env["RAGPAUSE_API_KEY"]
    assert "searxng" in app["depends_on"]


def test_dockerfile_copies_what_exists_and_pins_cpu_torch() -> None:
    dockerfile = (REPO / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (.+) \S+$", dockerfile, re.MULTILINE):
        for path in source.split():
            assert (REPO / path).exists(), path
    assert "torch==2.13.0" in dockerfile and "whl/cpu" in dockerfile
    assert compose()["services"]["ragpause"]["environment"]["RAGPAUSE_STARTER_CORPUS"].startswith(
        "/app/index_data/starter"
    )


def test_the_image_and_make_build_llama_cpp_for_a_named_baseline() -> None:
    """An image runs on other machines than the one that built it: never -march=native there."""
    dockerfile = (REPO / "Dockerfile").read_text()
    baseline = re.search(r"^ARG LLAMA_BASELINE=(\S+)$", dockerfile, re.MULTILINE)
    assert baseline and baseline.group(1) == "x86-64-v3"
    assert 'deploy/build_llama_cpp.sh python "$LLAMA_BASELINE"' in dockerfile
    # The wheel is installed before the project, so pip never builds llama-cpp-python itself.
    assert dockerfile.index("build_llama_cpp.sh python") < dockerfile.index("pip install --no-cache-dir .")
    makefile = (REPO / "Makefile").read_text()
    assert makefile.index("deploy/build_llama_cpp.sh $(PY)") < makefile.index("pip install -e '.[test]'")
    script = (REPO / "deploy" / "build_llama_cpp.sh").read_text()
    assert "-DGGML_NATIVE=ON" not in script and "--no-cache-dir" in script


def test_an_empty_api_key_refuses_to_start() -> None:
    # RAGPAUSE_API_KEY= used to turn authentication off without a word.
    with pytest.raises(ValidationError, match="is set but empty"):
        Settings(api_key="  ")
    assert Settings(api_key=" s3cret ").server.api_key.get_secret_value() == "s3cret"
    env = {**os.environ, "RAGPAUSE_API_KEY": "", "RAGPAUSE_PORT": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "service"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 2
    assert "RAGPAUSE_API_KEY: is set but empty" in run.stderr and "Traceback" not in run.stderr
    # The compose file, whose service listens on the network, will not start without one.
    assert ":?" in compose()["services"]["ragpause"]["environment"]["RAGPAUSE_API_KEY"]
