"""Safelist: known-good files are reported with a negative score and dropped before analysis."""
