"""What the classifier says about one text: the chosen intent (or a rejection), its confidence
and every in-scope label ranked."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Prediction:
    """One classified text.

    `label` is the chosen intent, or None when the text is rejected as out of scope;
    `confidence` is the top in-scope score (0 to 1) whether or not it was accepted;
    `ranking` lists every in-scope label with its score, best first (never None).
    """

    label: str | None
    confidence: float
    ranking: list[tuple[str, float]] = field(default_factory=list)
