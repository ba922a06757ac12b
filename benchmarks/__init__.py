"""Benchmarks: not tests. Each measures one thing on this machine and writes JSON results to
``benchmarks/results/`` (git-ignored); the numbers go in the issue notes."""
