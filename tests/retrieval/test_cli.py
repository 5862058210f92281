"""The retrieval command line, run as a user would run it."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO, STARTER


def cli(*args: str, data_dir) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "retrieval", "--data-dir", str(data_dir), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "HOME": str(data_dir)},
    )


def test_index_search_stats(tmp_path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "broken.pdf").write_bytes(b"%PDF-1.4 nothing else")
    (tmp_path / "docs" / "keeper.html").write_text(
        "<title>Lighthouse</title><p>The keeper of Narth light is Ilse Varro.</p>"
    )
    data = tmp_path / "data"
    done = cli("index", str(STARTER), str(tmp_path / "docs"), data_dir=data)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["added"] == len(list(STARTER.glob("*.md"))) + 1 and summary["failed"] == 1
    assert "skipped" in done.stderr and "broken.pdf" in done.stderr
    assert "file" in done.stderr  # the progress bar

    again = json.loads(cli("index", str(STARTER), data_dir=data).stdout.strip().splitlines()[-1])
    assert again.get("unchanged") == summary["added"] - 1 and "added" not in again

    found = cli("search", "Who keeps the Narth lighthouse?", "-k", "2", data_dir=data)
    assert found.returncode == 0 and found.stdout.startswith("[1]") and "Ilse Varro" in found.stdout.split("[2]")[0]

    stats = json.loads(cli("stats", data_dir=data).stdout)
    assert stats["documents"] == summary["added"] and stats["chunks"] == stats["vectors"]
