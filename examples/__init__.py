"""Runnable examples that use herdproof's ideas against real infrastructure."""
