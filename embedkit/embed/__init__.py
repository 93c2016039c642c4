"""Embedding: tokens, widgets and dashboards, the HTTP routes and the browser side."""
