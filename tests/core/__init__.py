"""Tests of core/, the engine."""
