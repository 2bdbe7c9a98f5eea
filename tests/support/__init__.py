"""Plain helpers shared by the test tiers: builders, store inspection, waiting on conditions.

Nothing here is a pytest fixture (those live in each tier's ``conftest.py``), and nothing here
opens a connection at import time, so a unit test may import the pure modules.
"""
