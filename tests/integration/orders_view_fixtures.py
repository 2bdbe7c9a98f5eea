"""Deprecated: import from ``tests.support.orders`` (pure builders) and ``tests.support.order_ledger``.

Kept only while ``tests/e2e/test_cli_project.py`` still imports it; delete it with that import.
"""

from __future__ import annotations

from tests.support.order_ledger import META, append, positions, view_rows
from tests.support.orders import ADDRESS, happy_path, new_order_id, placed

__all__ = ["ADDRESS", "META", "append", "happy_path", "new_order_id", "placed", "positions", "view_rows"]
