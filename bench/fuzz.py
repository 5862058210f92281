"""The long schemathesis run: many generated requests per operation against the service
loaded as `make run` loads it (starter corpus, default settings but a temporary data
directory), over real HTTP. The same check as tests/service/test_schema_fuzz.py, which runs 20
examples per operation. Baseline: none can exist for "no 5xx", so the ratio printed is the
share of 5xx answers (target 0). Writes bench/results/fuzz.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import schemathesis

from bench.machine import machine_report
from service.api.app import create_app
from service.runtime.runtime import Runtime
from service.settings import Settings
from tests.live_server import serve
from tests.schema_fuzz import fuzz

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=300, help="generated requests per operation")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "embedders").symlink_to(REPO / "index_data" / "embedders")  # exported once per machine
        settings = Settings(
            data_dir=Path(tmp),
            starter_corpus=REPO / "index_data" / "starter",
            generation_slots=2,
            default_max_tokens=16,
            max_tokens_limit=32,
            upload_wait_bytes=10_000_000,
        )
        engine = Runtime.load(settings)
        start = time.perf_counter()
        with serve(create_app(settings, runtime=engine)) as url:
            seen = fuzz(schemathesis.openapi.from_url(url + "/openapi.json"), args.examples)
        seconds = time.perf_counter() - start
    requests = sum(sum(c.values()) for c in seen.values())
    server_errors = sum(n for c in seen.values() for status, n in c.items() if status >= 500)
    report = {
        "benchmark": "fuzz",
        "machine": machine_report(),
        "examples_per_operation": args.examples,
        "requests": requests,
        "server_errors": server_errors,
        "ratio_5xx": server_errors / requests,
        "seconds": seconds,
        "statuses": {op: {str(k): v for k, v in sorted(c.items())} for op, c in seen.items()},
    }
    (Path(__file__).parent / "results" / "fuzz.json").write_text(json.dumps(report, indent=2) + "\n")
    for op, statuses in report["statuses"].items():
        print(f"{op:36s} {statuses}")
    print(
        f"{requests} requests in {seconds:.0f} s, {server_errors} server errors "
        f"(ratio {report['ratio_5xx']:.3f}, target 0)"
    )


if __name__ == "__main__":
    main()
