"""docker-compose.yml and the Dockerfile, checked without docker (this machine has no compose
plugin, so `docker compose config` cannot run here): the files parse, and the
wiring between the service, its volume and SearxNG is what the settings expect."""

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
    loaded = Settings(
        **{
            k.removeprefix("RAGPAUSE_").lower(): v
            for k, v in env.items()
            if k.startswith("RAGPAUSE_") and "${" not in v
        }
    )
    assert loaded.retrieval.web_search_url == env["RAGPAUSE_WEB_SEARCH_URL"] and str(loaded.data_dir) == "/data"


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
