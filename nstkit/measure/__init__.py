"""Measuring runs without running them twice: predicted memory, expected time, offline quality metrics, and
per-layer statistics."""
