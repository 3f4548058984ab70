"""feed/ (issue 14)."""
