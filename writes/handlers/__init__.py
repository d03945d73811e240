"""Command handlers: each runs one command in one unit of work."""
