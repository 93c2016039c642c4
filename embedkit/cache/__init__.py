"""Caches: query results and embed responses, keyed by data version, with single-flight."""
