"""Tests of bots/, the front doors."""
