"""Semantic queries: the Python form, the JSON form (Cube-compatible) and date ranges."""
