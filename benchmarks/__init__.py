"""Benchmarks of the commerce gateway (``make bench``); see ``benchmarks/__main__.py``."""
