"""Tests of the curators' studio."""
