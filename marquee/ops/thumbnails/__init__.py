"""Thumbnail candidates: artwork crops with the faces well placed, logo-safe areas, ranking."""
