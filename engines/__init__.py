"""Checkers over any registered model: explicit-state search, Hypothesis stateful testing."""
