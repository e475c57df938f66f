"""What a fitted classifier is made of (`Learned`: vocabularies, idf weights, weight matrices,
calibrations and cut-offs), and its file: numpy arrays and one JSON string in a compressed
.npz, never a pickle, so loading a model needs neither scikit-learn nor trust in the file."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from core.classifier.calibration import Calibration
from core.classifier.features import FloatArray
from core.classifier.novelty import Examples

# 3: sentence-embedding block and the n-gram model of the cascade; 4: the examples' embeddings
# and the confidence's novelty coefficient
FORMAT_VERSION = 4
# Internal name of the out-of-scope class; the NUL byte keeps it apart from any real label.
OUT_OF_SCOPE = "\x00out-of-scope"


def _empty_matrix() -> FloatArray:
    return np.zeros((0, 0))


def _empty_vector() -> FloatArray:
    return np.zeros(0)


@dataclass(frozen=True, slots=True)
class Learned:
    """Everything prediction reads, as training leaves it and a model file holds it.

    `classes` are the model columns (the labels, and maybe OUT_OF_SCOPE); per n-gram block,
    `vocabularies` map an n-gram to its column and `idfs` give its weight; `weights` are the
    full model's n-gram rows, `dense_weights` its embedding rows; `examples` the in-scope
    examples' embeddings its confidence compares a question with (none without an embedding
    block or an out-of-scope class). The cascade's n-gram model (`quick_*`) answers alone
    from `cascade_cut` (never, when it is infinite).
    """

    classes: list[str]
    vocabularies: list[dict[str, int]]
    idfs: list[FloatArray]
    unseen_idf: float  # idf of an n-gram no training text had
    weights: FloatArray
    dense_weights: FloatArray
    intercepts: FloatArray
    calibration: Calibration
    threshold: float
    margin: float
    quick_weights: FloatArray = field(default_factory=_empty_matrix)
    quick_intercepts: FloatArray = field(default_factory=_empty_vector)
    quick_calibration: Calibration = field(default_factory=Calibration)
    cascade_cut: float = math.inf
    examples: Examples = field(default_factory=Examples.empty)
    report: dict[str, Any] = field(default_factory=dict)


def to_arrays(learned: Learned, params: dict[str, Any]) -> dict[str, npt.NDArray[Any]]:
    """Everything prediction needs as numpy arrays; the metadata is one JSON string."""
    quick = learned.quick_calibration
    meta = {
        "format": FORMAT_VERSION,
        "classes": learned.classes,
        "vocabularies": [sorted(vocab, key=vocab.__getitem__) for vocab in learned.vocabularies],
        "threshold": learned.threshold,
        "margin": learned.margin,
        "slope": learned.calibration.slope,
        "bias": learned.calibration.bias,
        "spread": learned.calibration.spread,
        "novelty": learned.calibration.novelty,
        "cascade_cut": learned.cascade_cut,
        "quick_calibration": (quick.slope, quick.bias, quick.spread),
        "unseen_idf": learned.unseen_idf,
        "params": params,
        "report": learned.report,
    }
    return {
        "meta": np.array(json.dumps(meta, ensure_ascii=True)),
        "idf": np.concatenate(learned.idfs),
        "weights": learned.weights,
        "dense_weights": learned.dense_weights,
        "intercepts": learned.intercepts,
        "quick_weights": learned.quick_weights,
        "quick_intercepts": learned.quick_intercepts,
        "example_rows": learned.examples.rows,
        "example_offsets": learned.examples.offsets,
    }


def from_arrays(arrays: dict[str, npt.NDArray[Any]]) -> tuple[dict[str, Any], Learned]:
    """The classifier's parameters and what it learned, from `to_arrays` output."""
    meta = json.loads(str(arrays["meta"]))
    if meta.get("format") != FORMAT_VERSION:
        raise ValueError(f"unsupported classifier format {meta.get('format')!r}")
    params = dict(meta["params"])
    params["char_ngrams"] = tuple(params["char_ngrams"])
    vocabularies = [{gram: i for i, gram in enumerate(v)} for v in meta["vocabularies"]]
    sizes = [len(vocab) for vocab in vocabularies]
    offsets = [0, *np.cumsum(sizes)[:-1].tolist()]
    idf = np.asarray(arrays["idf"], dtype=np.float64)
    slope, bias, spread = meta["quick_calibration"]
    learned = Learned(
        classes=[str(label) for label in meta["classes"]],
        vocabularies=vocabularies,
        idfs=[idf[o : o + n] for o, n in zip(offsets, sizes, strict=True)],
        unseen_idf=float(meta["unseen_idf"]),
        weights=np.ascontiguousarray(arrays["weights"], dtype=np.float64),
        dense_weights=np.ascontiguousarray(arrays["dense_weights"], dtype=np.float64),
        intercepts=np.asarray(arrays["intercepts"], dtype=np.float64),
        calibration=Calibration(float(meta["slope"]), float(meta["bias"]), float(meta["spread"]),
                                float(meta["novelty"])),
        threshold=float(meta["threshold"]),
        margin=float(meta["margin"]),
        quick_weights=np.ascontiguousarray(arrays["quick_weights"], dtype=np.float64),
        quick_intercepts=np.asarray(arrays["quick_intercepts"], dtype=np.float64),
        quick_calibration=Calibration(float(slope), float(bias), float(spread)),
        cascade_cut=float(meta["cascade_cut"]),
        examples=Examples(np.ascontiguousarray(arrays["example_rows"], dtype=np.float32),
                          np.asarray(arrays["example_offsets"], dtype=np.int64)),
        report=dict(meta["report"]),
    )
    return params, learned


def save(arrays: dict[str, npt.NDArray[Any]], path: Path | str) -> None:
    """Write arrays to one compressed .npz file (no pickle inside)."""
    named: dict[str, Any] = dict(arrays)
    with Path(path).open("wb") as handle:
        np.savez_compressed(handle, **named)


def load(path: Path | str) -> dict[str, npt.NDArray[Any]]:
    """Read arrays written by `save`; refuses pickled content."""
    with np.load(Path(path), allow_pickle=False) as data:
        return {name: data[name] for name in data.files}
