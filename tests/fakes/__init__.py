"""Fake chat platforms for offline tests of the adapters."""
