"""Composition root: settings, the ASGI app and its clients, the CLI, embedded dev services."""
