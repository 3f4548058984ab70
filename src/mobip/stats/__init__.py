"""stats/ (issue 14)."""
