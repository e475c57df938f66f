"""The public intent data sets the accuracy benchmark reads, each as a train and a test split.

Read from a folder laid out as in shared/datasets, never copied into the project: CLINC150
"full" (with out-of-scope queries), BANKING77 and the Wikit French COVID set.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Dataset:
    """Texts and labels of a train and a test split; a label of None is out of scope."""

    name: str
    train_texts: list[str]
    train_labels: list[str | None]
    test_texts: list[str]
    test_labels: list[str | None]


def load_clinc150(folder: Path) -> Dataset:
    """CLINC150 "full": train+val (with oos_train+oos_val) against test (with oos_test)."""
    with (folder / "data_full.json").open(encoding="utf-8") as handle:
        splits = json.load(handle)

    def pairs(*names: str) -> tuple[list[str], list[str | None]]:
        rows = [row for name in names for row in splits[name]]
        labels = [None if name.startswith("oos") else str(label)
                  for name in names for _, label in splits[name]]
        return [str(text) for text, _ in rows], labels

    train_texts, train_labels = pairs("train", "val", "oos_train", "oos_val")
    test_texts, test_labels = pairs("test", "oos_test")
    return Dataset("clinc150", train_texts, train_labels, test_texts, test_labels)


def _read_csv(
    path: Path, text_column: str, label_column: str
) -> tuple[list[str], list[str | None]]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [row[text_column] for row in rows], [row[label_column] for row in rows]


def load_banking77(folder: Path) -> Dataset:
    """BANKING77: train.csv against test.csv (`text,category`), no out-of-scope queries."""
    train = _read_csv(folder / "train.csv", "text", "category")
    test = _read_csv(folder / "test.csv", "text", "category")
    return Dataset("banking77", *train, *test)


def load_wikit_fr_covid(folder: Path) -> Dataset:
    """Wikit French COVID employee-support FAQ (`utterance,intent`), no out-of-scope queries."""
    train = _read_csv(folder / "training_dataset.csv", "utterance", "intent")
    test = _read_csv(folder / "test_dataset.csv", "utterance", "intent")
    return Dataset("wikit_fr_covid", *train, *test)


LOADERS: dict[str, Callable[[Path], Dataset]] = {
    "clinc150": load_clinc150,
    "banking77": load_banking77,
    "wikit_fr_covid": load_wikit_fr_covid,
}
