"""Reproduced lectures and papers: one module each, writing figures into figures/<source>/."""
