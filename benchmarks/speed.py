"""`make bench`: how fast faqbot answers, starts and serves, next to baselines run alongside.

One run measures, on the shipped knowledge base:
- `FAQBot.answer` latency on single questions and batch throughput, against a plain
  scikit-learn pipeline (TfidfVectorizer + LogisticRegression) trained on the same examples;
  single questions are timed cold: each one new to the process (never asked before, no
  training example), with the classifier's per-word look-ups emptied before it;
- training time, on the knowledge base and on CLINC150's training set when the shared data
  sets sit beside the repository;
- start-up of `faqbot ask` as a new process and its peak memory, against the import floor of
  the scikit-learn modules such a pipeline needs;
- end-to-end serving through Telegram and Discord (see `benchmarks.serving`).

Every baseline runs in the same process or on the same machine, just before or after faqbot,
so ratios compare like with like. Figures are printed as a table, or as one JSON object.
Nothing here is a test: the test suite only checks that a quick run works.

The measurements are in `benchmarks.engine_speed`, `benchmarks.startup` and
`benchmarks.serving`, the sizes and questions in `benchmarks.workload`; this module runs
them in turn and assembles the report.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmarks import serving
from benchmarks.engine_speed import clinc_figure, engine_figures
from benchmarks.report import Report
from benchmarks.startup import child_environment, startup_figures
from benchmarks.workload import FULL, QUICK, Sizes, varied_questions
from core import load_knowledge_base
from intents import DEFAULT_KB_PATH

# ---------------------------------------------------------------------------------------------
# The whole run


def run_bench(sizes: Sizes, progress: Callable[[str], None] = lambda _: None) -> Report:
    """Every measurement of `make bench`, in one run."""
    report = Report(context=_machine())
    progress("engine: training, latency and batch throughput")
    figures, context = engine_figures(sizes)
    report.figures += figures
    report.context.update(context)
    if sizes.clinc:
        progress("training on CLINC150")
        clinc = clinc_figure()
        if clinc is not None:
            report.figures.append(clinc)
    with tempfile.TemporaryDirectory(prefix="faqbot-bench-") as work_dir:
        progress("start-up of faqbot ask")
        report.figures += startup_figures(sizes, Path(work_dir))
        texts = load_knowledge_base(DEFAULT_KB_PATH).training_data()[0]
        paced = varied_questions(texts, sizes.paced, seed=3)
        burst = varied_questions(texts, sizes.messages, seed=4)
        env = child_environment(Path(work_dir))
        for platform_name in serving.PLATFORMS:
            progress(f"end to end: {platform_name}")
            report.figures += serving.serving_figures(platform_name, paced, burst,
                                                            sizes.users, env)
        progress("end to end: telegram, question log in PostgreSQL")
        report.figures += serving.postgres_figures(paced, burst, sizes.users, env)
    return report


def _machine() -> dict[str, Any]:
    from importlib import metadata

    versions = {name: metadata.version(name) for name in
                ("scikit-learn", "numpy", "pydantic", "python-telegram-bot", "discord.py")}
    return {"python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "versions": versions}


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m benchmarks.speed [--json] [--quick]` (`make bench`): the report on stdout."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.speed",
        description="measure speed, start-up and memory against baselines, in one run")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.add_argument("--quick", action="store_true", help="small counts: seconds, not minutes")
    args = parser.parse_args(argv)

    def progress(step: str) -> None:
        print(f"bench: {step}", file=sys.stderr, flush=True)

    report = run_bench(QUICK if args.quick else FULL, progress)
    print(json.dumps(report.as_dict(), ensure_ascii=False) if args.json
          else report.as_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
