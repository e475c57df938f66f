"""The benchmark runner on tiny generated data sets in the three public formats."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest

from benchmarks.compared_systems import BASELINE_CS, BaselineSystem, FaqbotSystem, default_systems
from benchmarks.dataset_loaders import LOADERS, load_banking77, load_clinc150, load_wikit_fr_covid
from benchmarks.public_datasets import (
    encoder_groups,
    main,
    markdown_table,
    median_latency,
    run_benchmark,
    score,
    train_and_test,
)
from core.errors import FaqbotError

TOPICS = {
    "card_lost": ["lost", "card", "stolen", "missing", "wallet"],
    "transfer": ["transfer", "money", "send", "friend", "account"],
    "balance": ["balance", "how", "much", "left", "account"],
    "pin_change": ["pin", "change", "code", "new", "reset"],
}
NOISE = ["weather", "pizza", "football", "movie", "song", "holiday", "recipe", "garden"]


def sentences(words: list[str], count: int, rng: random.Random) -> list[str]:
    return [" ".join(rng.sample(words, 3) + rng.sample(["please", "my", "the", "i"], 1))
            for _ in range(count)]


def pairs(count: int, seed: int) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    return [(text, label) for label, words in TOPICS.items()
            for text in sentences(words, count, rng)]


def write_csv(path: Path, header: tuple[str, str], rows: list[tuple[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("datasets")
    rng = random.Random(7)
    clinc = {
        "train": [list(p) for p in pairs(10, 1)], "val": [list(p) for p in pairs(3, 2)],
        "test": [list(p) for p in pairs(5, 3)],
        "oos_train": [[t, "oos"] for t in sentences(NOISE, 8, rng)],
        "oos_val": [[t, "oos"] for t in sentences(NOISE, 4, rng)],
        "oos_test": [[t, "oos"] for t in sentences(NOISE, 10, rng)],
    }
    (root / "clinc150").mkdir()
    (root / "clinc150" / "data_full.json").write_text(json.dumps(clinc), encoding="utf-8")
    (root / "banking77").mkdir()
    write_csv(root / "banking77" / "train.csv", ("text", "category"), pairs(12, 4))
    write_csv(root / "banking77" / "test.csv", ("text", "category"), pairs(4, 5))
    (root / "wikit_fr_covid").mkdir()
    write_csv(root / "wikit_fr_covid" / "training_dataset.csv", ("utterance", "intent"),
              pairs(9, 6))
    write_csv(root / "wikit_fr_covid" / "test_dataset.csv", ("utterance", "intent"),
              pairs(4, 8))
    return root


@pytest.fixture(scope="module")
def rows(data_dir: Path) -> list[dict[str, object]]:
    return run_benchmark(data_dir)


def test_loaders_read_the_three_formats(data_dir: Path) -> None:
    clinc = load_clinc150(data_dir / "clinc150")
    assert len(clinc.train_texts) == 4 * 13 + 12
    assert clinc.train_labels.count(None) == 12
    assert clinc.test_labels.count(None) == 10
    banking = load_banking77(data_dir / "banking77")
    assert len(banking.train_texts) == 48
    assert None not in banking.test_labels
    wikit = load_wikit_fr_covid(data_dir / "wikit_fr_covid")
    assert set(wikit.train_labels) == set(TOPICS)


def test_one_row_per_dataset_and_system(rows: list[dict[str, object]]) -> None:
    assert [(r["dataset"], r["system"]) for r in rows] == [
        (dataset, system) for dataset in LOADERS
        for system in ("faqbot", "tfidf-lr", "tfidf-svm", "encoder-lr")
    ]


def test_rows_hold_sane_figures(rows: list[dict[str, object]]) -> None:
    for row in rows:
        for key in ("in_scope_accuracy", "top1_accuracy"):
            assert 0.0 <= float(str(row[key])) <= 100.0
        assert float(str(row["in_scope_accuracy"])) <= float(str(row["top1_accuracy"]))
        assert float(str(row["fit_seconds"])) >= 0.0
        assert float(str(row["latency_ms"])) > 0.0
        if row["dataset"] == "clinc150":
            assert 0.0 <= float(str(row["oos_recall"])) <= 100.0
        else:
            assert row["oos_recall"] is None
            assert row["mean"] is None
    faqbot_clinc = rows[0]
    assert float(str(faqbot_clinc["top1_accuracy"])) >= 90.0  # the toy topics are easy
    assert json.loads(json.dumps(rows)) == rows  # `--json` prints them as they are


def test_only_runs_one_dataset(data_dir: Path) -> None:
    only = run_benchmark(data_dir, only="wikit_fr_covid")
    assert {row["dataset"] for row in only} == {"wikit_fr_covid"}


def test_systems_that_share_the_encoder_run_in_one_group() -> None:
    # faqbot and encoder-lr share one encoder (each text encoded once); the TF-IDF baselines
    # need none and may run in other processes.
    assert encoder_groups(default_systems()) == [[0, 3], [1], [2]]


def test_workers_change_nothing_but_the_time(data_dir: Path) -> None:
    timings = {"fit_seconds", "latency_ms"}

    def figures(workers: int) -> list[dict[str, object]]:
        rows = run_benchmark(data_dir, only="banking77", workers=workers)
        return [{k: v for k, v in row.items() if k not in timings} for row in rows]

    assert figures(1) == figures(2)


def test_unknown_or_missing_dataset_is_an_error(data_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(FaqbotError, match="unknown data set"):
        run_benchmark(data_dir, only="mnist")
    with pytest.raises(FaqbotError, match="no data set"):
        run_benchmark(tmp_path)


def test_command_prints_one_json_row_per_system(
        data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(data_dir), "--only", "banking77", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(row["dataset"], row["system"]) for row in rows] == [
        ("banking77", system) for system in ("faqbot", "tfidf-lr", "tfidf-svm", "encoder-lr")]


@pytest.mark.parametrize("args", [["absent"], [".", "--only", "mnist"], ["."]])
def test_command_refuses_bad_input_with_one_line_and_exit_2(
        args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # "." holds no data set
    assert main(args) == 2
    error = capsys.readouterr().err
    assert error.startswith("benchmark: error: ") and error.count("\n") == 1


def test_markdown_table(rows: list[dict[str, object]]) -> None:
    table = markdown_table(rows).splitlines()
    assert table[0].startswith("| data set | system | in-scope acc | oos recall |")
    assert len(table) == 2 + len(rows)
    assert "| banking77 | faqbot |" in table[6]
    assert "| - | - |" in table[6]  # no out-of-scope figures without out-of-scope data


def test_score_counts_rejections() -> None:
    predictions: list[tuple[str, float, str | None]] = [
        ("a", 0.9, "a"), ("b", 0.4, None), ("a", 0.8, "a"), ("b", 0.2, None),
    ]
    figures = score(predictions, ["a", "b", None, None])
    assert figures == {"in_scope_accuracy": 50.0, "oos_recall": 50.0, "mean": 50.0,
                       "top1_accuracy": 100.0}


def test_baselines_choose_c_on_the_training_split(data_dir: Path) -> None:
    clinc = load_clinc150(data_dir / "clinc150")
    for kind in ("lr", "svm"):
        baseline = BaselineSystem(kind)
        baseline.fit(clinc.train_texts, clinc.train_labels)
        assert baseline.C in BASELINE_CS[kind]
        assert baseline.describe()["cv"]["C"] == baseline.C


class _Recording:
    """A system that records what it is asked, to check how latency is timed."""

    name = "recording"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def predict_one(self, text: str) -> tuple[str, float, str | None]:
        self.calls.append(text)
        return "a", 1.0, "a"

    def forget(self) -> None:
        self.calls.append("<forget>")


def test_latency_is_timed_cold_on_questions_not_answered_before() -> None:
    system = _Recording()
    median_latency(system, ["q1", "q2"], warm_up=["train"], count=2)  # type: ignore[arg-type]
    assert system.calls == ["train", "<forget>", "q1", "<forget>", "q2"]


def test_faqbot_is_timed_before_it_answers_the_test_split(data_dir: Path) -> None:
    dataset = load_wikit_fr_covid(data_dir / "wikit_fr_covid")
    order: list[str] = []
    system = FaqbotSystem()
    timed, predicted = system.predict_one, system.predict
    system.predict_one = lambda text: order.append("one") or timed(text)  # type: ignore[method-assign]
    system.predict = lambda texts: order.append("all") or predicted(texts)  # type: ignore[method-assign]
    train_and_test(system, dataset)
    answered = order.index("all")
    assert answered > 0 and set(order[:answered]) == {"one"}  # timed before any batch


def test_baseline_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="baseline"):
        BaselineSystem("bert")
