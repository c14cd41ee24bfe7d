"""Scorers: each judges a batch of (prompt, image) pairs and returns metric rows (see base.py)."""
