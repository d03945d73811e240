"""Hostile-client tests: every attack refused with its code, none answered with an internal error."""
