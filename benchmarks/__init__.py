"""Benchmarks of fastlr: a pytest-benchmark suite and a report (``python -m benchmarks.report``)."""
