"""The queries of feed/ tables (only this package queries them)."""

from __future__ import annotations
