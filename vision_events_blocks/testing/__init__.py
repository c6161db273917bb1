"""Helpers for tests and demos that need a real host: the inference HTTP server, workflow examples."""
