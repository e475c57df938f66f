"""The curated default knowledge base, shipped as data beside this module."""

from pathlib import Path

DEFAULT_KB_PATH = Path(__file__).with_name("faq.yaml")

__all__ = ["DEFAULT_KB_PATH"]
