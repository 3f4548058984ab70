"""The queries of stats/ tables (only this package queries them)."""

from __future__ import annotations
