"""One bootstrap: only app/bootstrap.py builds an engine, a MongoDB client or the message bus,
and the tunables those take have their one default in the settings."""

from __future__ import annotations

import ast
import inspect
from dataclasses import MISSING, fields
from pathlib import Path

from app.bootstrap import WorkerStores, build_mongo, load_settings, worker_config
from workers.config import WorkerConfig
from workers.runner import ProjectionRunner
from workers.supervisor import Supervisor

ROOT = Path(__file__).resolve().parents[2]
CODE = ("app", "schema", "writes", "reads", "workers", "tests", "bench")
BOOTSTRAP = "app/bootstrap.py"
CONSTRUCTORS = {
    "create_engine",
    "create_async_engine",
    "AsyncMongoClient",
    "MongoClient",
    "MessageBus",
}
# Modules that must build a client themselves, and why. Keep this short.
EXCEPTIONS = {
    ("writes/db.py", "create_async_engine"): "the engine recipe that the bootstrap calls",
    ("writes/migrations/env.py", "create_async_engine"): (
        "alembic runs env.py itself, on the URL `shop migrate` hands it"
    ),
    ("app/embedded/mongo.py", "MongoClient"): (
        "initiates the embedded mongod's replica set, before any MONGODB_URL exists"
    ),
}


def constructions(path: Path) -> set[str]:
    """The watched constructors that `path` calls (or imports under another name)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in CONSTRUCTORS:
                found.add(name)
        elif isinstance(node, ast.ImportFrom):
            # `import X as Y` would hide the calls from the check above.
            found.update(
                a.name
                for a in node.names
                if a.name in CONSTRUCTORS and a.asname not in {None, a.name}
            )
    return found


def test_only_the_bootstrap_builds_engines_mongo_clients_and_the_bus() -> None:
    scanned = [p for folder in CODE for p in (ROOT / folder).rglob("*.py")]
    assert len(scanned) > 100
    outside = {
        (str(p.relative_to(ROOT)), name)
        for p in scanned
        for name in constructions(p)
        if str(p.relative_to(ROOT)) != BOOTSTRAP
    }
    assert sorted(outside - EXCEPTIONS.keys()) == []
    # An exception that no longer applies goes from the list.
    assert sorted(EXCEPTIONS.keys() - outside) == []
    assert constructions(ROOT / BOOTSTRAP) >= {"create_engine", "AsyncMongoClient", "MessageBus"}


def test_the_scan_sees_calls_and_renamed_imports(tmp_path: Path) -> None:
    module = tmp_path / "module.py"
    module.write_text(
        "import pymongo\nfrom writes.bus import MessageBus as Bus\n"
        "client = pymongo.AsyncMongoClient('mongodb://x')\nengine = create_engine('x')\n"
    )
    assert constructions(module) == {"AsyncMongoClient", "MessageBus", "create_engine"}


def test_the_worker_tunables_have_no_default_outside_the_settings() -> None:
    assert [f.name for f in fields(WorkerConfig) if f.default is not MISSING] == []
    runner = inspect.signature(ProjectionRunner).parameters["batch_size"]
    supervisor = inspect.signature(Supervisor).parameters["lease_ttl_ms"]
    assert runner.default is inspect.Parameter.empty
    assert supervisor.default is inspect.Parameter.empty


def test_the_worker_gets_the_settings_tunables() -> None:
    settings = load_settings(projection_batch_size=123, projection_lease_ttl_ms=4321)
    config = worker_config(settings)
    assert (config.batch_size, config.lease_ttl_ms) == (123, 4321)
    assert config.stores == WorkerStores(settings)


async def test_the_api_and_the_worker_share_one_mongodb_timeout() -> None:
    settings = load_settings(
        mongodb_url="mongodb://127.0.0.1:1/?replicaSet=rs0", mongodb_timeout_ms=1234
    )
    api, worker = build_mongo(settings), worker_config(settings).stores.mongo()
    try:
        for client in (api, worker):
            assert client.options.server_selection_timeout == 1.234
            assert client.options.pool_options.connect_timeout == 1.234
    finally:
        await api.close()
        await worker.close()
