"""Helpers for tests and benches: tiny random-weight releases in the official file layout."""
