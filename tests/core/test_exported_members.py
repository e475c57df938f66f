"""The public API of `core` is a contract (DESIGN.md): changing it must be deliberate."""

import core

PUBLIC_API = {
    "MAX_QUESTION_CHARS",
    "ConfigurationError",
    "FAQBot",
    "FaqbotError",
    "Intent",
    "IntentClassifier",
    "KnowledgeBase",
    "KnowledgeBaseError",
    "Prediction",
    "Reply",
    "Settings",
    "Suggestion",
    "UnknownIntentError",
    "guess_language",
    "load_knowledge_base",
    "load_settings",
    "normalize",
}


def test_all_is_the_public_api() -> None:
    assert set(core.__all__) == PUBLIC_API


def test_every_public_name_exists() -> None:
    for name in core.__all__:
        assert getattr(core, name) is not None, name


def test_errors_share_one_base() -> None:
    for error in (core.ConfigurationError, core.KnowledgeBaseError, core.UnknownIntentError):
        assert issubclass(error, core.FaqbotError)


def test_reply_fields_are_the_json_contract() -> None:
    assert list(core.Reply.model_fields) == ["question", "kind", "intent", "confidence", "lang",
                                             "answer", "suggestions"]


def test_core_imports_no_platform_library() -> None:
    import subprocess
    import sys

    code = ("import sys, core; bad = [m for m in sys.modules if m.split('.')[0] in "
            "{'telegram', 'discord', 'bots', 'aiohttp'}]; print(bad)")
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True).stdout.strip()
    assert output == "[]"
