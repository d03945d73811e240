"""Embedded PostgreSQL, MongoDB and Redis for development and tests.

When DATABASE_URL, MONGODB_URL or REDIS_URL is unset, the app runs a real server from a wheel
in the venv, with all its files under one data dir (data_dir/postgres, mongo, redis). The
servers listen on loopback only (PostgreSQL on a unix socket, the others on free TCP ports).
Processes using the same data dir share the servers: data_dir/services.json, guarded by a
lock file, counts their users, and the last one to leave stops them.
"""

from app.embedded._manager import EmbeddedUrls, embedded_services
from app.embedded._procs import EmbeddedServiceError

__all__ = ["EmbeddedServiceError", "EmbeddedUrls", "embedded_services"]
