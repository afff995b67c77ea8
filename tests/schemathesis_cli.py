"""Runs `schemathesis run --checks all` (the command line, as a person would) against a server on 127.0.0.1 and
says how many cases it generated; a failure or an error fails the calling test with schemathesis's own report.
Bounded: a fixed seed and a number of examples per operation, so a run is the same cases every time."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")


def run_schemathesis(
    url: str, workdir: Path, *, config: str = "", args: tuple[str, ...] = (), seed: int = 13, examples: int = 40
) -> int:
    """The number of cases generated; asserts that every check passed on every one of them."""
    config_file = workdir / "schemathesis.toml"
    config_file.write_text(config)
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config_file),
        "--no-color",
        "run",
        f"{url}/schema",
        "--checks",
        "all",
        "--seed",
        str(seed),
        "--max-examples",
        str(examples),
        "--generation-database",
        "none",
        "--exclude-operation-id",
        "streamEvents",  # an endless stream: tests/*/test_events*.py cover it
        *args,
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks"}
    done = subprocess.run(command, cwd=workdir, env=env, capture_output=True, text=True, timeout=240)
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-20000:]
    counted = re.search(r"(\d+) generated, (\d+) passed", report)
    assert counted is not None and counted.group(1) == counted.group(2), report[-5000:]
    return int(counted.group(1))
