"""Benchmarks that print side-by-side ratios (``python -m bench.<name>``)."""
