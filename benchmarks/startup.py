"""Start-up of `faqbot ask` as a new process and its peak memory, beside the import floor of
the scikit-learn modules a plain pipeline needs, measured alternately in the same run."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchmarks.report import Figure, Target
from benchmarks.serving_processes import faqbot_command
from benchmarks.workload import ASK_PARAPHRASE, ASK_QUESTION, Sizes

IMPORT_FLOOR = "import sklearn.linear_model, sklearn.feature_extraction.text"


@dataclass(frozen=True)
class ProcessRun:
    """A finished child process: wall time, peak resident memory, exit code, error output."""

    seconds: float
    peak_mb: float
    exit_code: int
    errors: str


# Linux charges a process with the peak memory of the one that started it (the memory in use
# when it called exec), so the processes measured are started by a small interpreter of their
# own, not by this large one: the peak then read by wait4 is theirs.
_MEASURER = """
import json, os, subprocess, sys, time
started = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
errors = child.stderr.read()
_, status, usage = os.wait4(child.pid, 0)
print(json.dumps({"seconds": time.perf_counter() - started, "peak_kb": usage.ru_maxrss,
                  "exit_code": os.waitstatus_to_exitcode(status),
                  "errors": errors.decode(errors="replace")[-800:]}))
"""


def run_process(command: Sequence[str], env: dict[str, str]) -> ProcessRun:
    """Run a command to completion: its wall time and its own peak resident memory."""
    measurer = [sys.executable, "-I", "-S", "-c", _MEASURER, *command]
    finished = subprocess.run(measurer, env=env, capture_output=True, text=True, check=True)
    result = json.loads(finished.stdout)
    return ProcessRun(result["seconds"], result["peak_kb"] / 1024, result["exit_code"],
                      result["errors"])


def child_environment(work_dir: Path) -> dict[str, str]:
    """This environment, with the shipped knowledge base and a model cache and a question log
    of the run's own (in `work_dir`), and no platform token."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("FAQBOT_") and not name.endswith("_BOT_TOKEN")}
    return env | {"FAQBOT_CACHE_DIR": str(work_dir / "models"),
                  "FAQBOT_DB": str(work_dir / "questions.sqlite3"),
                  "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


def _cache_state(directory: Path) -> set[tuple[str, int]]:
    return {(path.name, path.stat().st_mtime_ns) for path in directory.glob("*.npz")}


def startup_figures(sizes: Sizes, work_dir: Path) -> list[Figure]:
    """`faqbot ask` cold (it trains) and warm (the cache) next to the import floor."""
    env = child_environment(work_dir)
    cache_dir = Path(env["FAQBOT_CACHE_DIR"])
    ask = [*faqbot_command(), "ask", ASK_QUESTION]
    floor = [sys.executable, "-c", IMPORT_FLOOR]
    cold = _checked(run_process(ask, env))
    cached = _cache_state(cache_dir)
    warm: list[ProcessRun] = []
    floors: list[ProcessRun] = []
    encoding: list[ProcessRun] = []
    retrained = 0
    for _ in range(sizes.startup_runs):  # alternated, so that all see the same machine load
        warm.append(_checked(run_process(ask, env)))
        floors.append(_checked(run_process(floor, env)))
        encoding.append(_checked(run_process([*ask[:-1], ASK_PARAPHRASE], env)))
        retrained += _cache_state(cache_dir) != cached
    python = _checked(run_process([sys.executable, "-c", "pass"], env))
    floor_name = f"python -c '{IMPORT_FLOOR}'"
    warm_seconds = statistics.median(run.seconds for run in warm)
    floor_seconds = statistics.median(run.seconds for run in floors)
    return [
        Figure("ask_first_run_s", "faqbot ask, first run (trains, then caches)", "s",
               cold.seconds, floor_seconds, floor_name),
        Figure("ask_s", "faqbot ask, new process, cached model: median", "s",
               warm_seconds, floor_seconds, floor_name, Target("ratio", "<=", 1.5)),
        Figure("ask_peak_mb", "faqbot ask, peak resident memory", "MB",
               max(run.peak_mb for run in warm), max(run.peak_mb for run in floors),
               floor_name, Target("value", "<", 300)),
        Figure("ask_encoder_s", "faqbot ask, a question that loads the encoder: median", "s",
               statistics.median(run.seconds for run in encoding), floor_seconds, floor_name,
               note=f"{ASK_PARAPHRASE!r}: the n-gram model is unsure, the encoder decides"),
        Figure("ask_encoder_peak_mb", "faqbot ask, a question that loads the encoder: peak",
               "MB", max(run.peak_mb for run in encoding), max(run.peak_mb for run in floors),
               floor_name, Target("value", "<", 300)),
        Figure("ask_retrained", "faqbot ask runs after the first that retrained", "runs",
               retrained, target=Target("value", "==", 0)),
        Figure("python_s", "bare interpreter start-up (python -c pass)", "s", python.seconds),
    ]


def _checked(run: ProcessRun) -> ProcessRun:
    if run.exit_code != 0:
        raise RuntimeError(f"a benchmark process failed (exit {run.exit_code}): "
                           f"{run.errors.strip()}")
    return run
