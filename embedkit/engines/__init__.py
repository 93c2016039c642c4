"""Engines that run compiled, scoped queries: DuckDB (the store) and Polars."""
