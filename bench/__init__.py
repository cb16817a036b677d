"""Benchmarks: one script per topic, each printing its own figures (``make bench`` runs all)."""
