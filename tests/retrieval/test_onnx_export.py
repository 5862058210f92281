"""The embedder's first-use export, as two services starting on one data directory run it."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

EXPORT = """
import sys
from pathlib import Path
from retrieval.embedder import default_embedder_path
from retrieval.onnx_export import ensure_onnx
print(ensure_onnx(default_embedder_path(), Path(sys.argv[1]), int8=True))
"""


def test_two_processes_exporting_at_once_both_get_the_model(tmp_path) -> None:
    # Both used to write the same partial file; the second rename then failed and that
    # service did not start.
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", EXPORT, str(tmp_path)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    results = [run.communicate(timeout=600) for run in runs]
    for run, (_out, err) in zip(runs, results):
        assert run.returncode == 0, err[-2000:]
    paths = {out.strip().splitlines()[-1] for out, _ in results}
    assert len(paths) == 1 and paths.pop().endswith("model.int8.onnx")
    assert not list(tmp_path.rglob("*partial*")), "no half-written file is left behind"

    import onnxruntime

    model = next(tmp_path.rglob("model.int8.onnx"))
    names = {i.name for i in onnxruntime.InferenceSession(str(model)).get_inputs()}
    assert names == {"input_ids", "attention_mask", "token_type_ids"}
