"""A long property-based run against ``crm-modes serve``: schemathesis' own runner, >= 10,000 cases.

Run: ``.venv/bin/python benchmarks/bench_rest_fuzz.py --tracking-uri URI [--max-examples 5000]
[--seed 1]`` against a store whose ``crm-advisor@champion`` exists. The service is started as a
user starts it; ``st run`` generates valid and invalid requests for every operation of its
OpenAPI document (coverage and fuzzing phases), with a token holding every scope (the service
runs with credentials, as a shared one must). Target: no 5xx in >= 10,000 cases.
The test suite runs a shorter version on every CI run (tests/serve/test_rest_fuzz.py).
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import yaml
from _report import save
from bench_score import BIN, environment, serve

from crm_modes.serve.rest.access import Scope, new_token, token_hash

PORT = 8914


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tracking-uri", required=True)
    parser.add_argument("--max-examples", type=int, default=5_000, help="per operation and phase")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        env = environment(args.tracking_uri)
        token = new_token()
        credentials = Path(folder) / "credentials.yaml"
        entry = {"holder": "fuzzer", "scopes": [scope.value for scope in Scope], "hash": token_hash(token)}
        credentials.write_text(yaml.safe_dump({"credentials": [entry]}))
        command = [str(BIN / "crm-modes"), "serve", "--host", "127.0.0.1", "--credentials", str(credentials)]
        process = serve(command, env, Path(folder), "/ready", PORT)
        try:
            started = time.perf_counter()
            result = subprocess.run(
                [
                    str(BIN / "st"),
                    "run",
                    f"http://127.0.0.1:{PORT}/openapi.json",
                    "--checks",
                    "not_a_server_error",
                    "--max-examples",
                    str(args.max_examples),
                    "--seed",
                    str(args.seed),
                    "--no-color",
                    "--header",
                    f"Authorization: Bearer {token}",
                ],
                env=env,
                cwd=folder,
                capture_output=True,
                text=True,
            )
            seconds = time.perf_counter() - started
        finally:
            process.terminate()
    output = result.stdout + result.stderr
    counts = re.search(r"(\d+) generated, (\d+) passed", output)
    if counts is None:
        sys.exit(f"could not read the case count from schemathesis:\n{output[-3000:]}")
    generated, passed = int(counts[1]), int(counts[2])
    server_errors = len(re.findall(r"Server error", output))
    save(
        "rest_fuzz",
        {
            "cases": generated,
            "passed": passed,
            "server_errors": server_errors,
            "seconds": round(seconds, 1),
            "schemathesis_exit_code": result.returncode,
            "checks": {
                "at_least_10000_cases": generated >= 10_000,
                "no_5xx": result.returncode == 0 and passed == generated,
            },
        },
    )


if __name__ == "__main__":
    main()
