"""A real fleet: the lesson's combined stack in Python against a real Redis (see README.md)."""
