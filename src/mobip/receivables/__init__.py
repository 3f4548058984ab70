"""receivables/ (issue 15)."""
