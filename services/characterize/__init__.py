"""Characterize: exact and fuzzy hashes of every file, and where its bytes look packed or encrypted."""
