"""The queries of receivables/ tables (only this package queries them)."""

from __future__ import annotations
