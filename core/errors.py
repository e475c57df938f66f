"""The one exception family of faqbot: callers catch `FaqbotError`, the CLI maps it to exit 2."""


class FaqbotError(Exception):
    """Base of every error faqbot raises on purpose."""


class KnowledgeBaseError(FaqbotError):
    """The knowledge base cannot be read or does not validate; nothing of it was loaded."""


class UnknownIntentError(FaqbotError, KeyError):
    """An intent id that the knowledge base does not define (a stale button, a typo)."""

    def __str__(self) -> str:
        # KeyError quotes its argument; a plain message reads better in logs and on stderr.
        return str(self.args[0]) if self.args else "unknown intent"


class ConfigurationError(FaqbotError):
    """A setting is missing or malformed (a token, an id list, a URL)."""
