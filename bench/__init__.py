"""Benchmarks for shoprelay: ingest, drain and end to end, reported as same-run ratios."""
