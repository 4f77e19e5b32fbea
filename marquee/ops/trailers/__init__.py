"""Trailer moments: matching a title's trailer back to its film, and the per-shot labels it gives."""
