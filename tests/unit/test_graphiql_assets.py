"""The vendored GraphiQL files are what their npm packages shipped, and the page loads
nothing from anywhere else."""

from __future__ import annotations

import hashlib
import json
import re

from app.graphiql import MANIFEST, OWN_FILES, SCRIPTS, STATIC, STYLES, page
from app.graphiql.vendor import PINS


def test_every_vendored_file_is_the_pinned_packages_own_with_its_licence() -> None:
    manifest = json.loads(MANIFEST.read_text())
    pinned = {served: (pin.package, pin.version) for pin in PINS for served in pin.files.values()}
    assert {name: (e["package"], e["version"]) for name, e in manifest.items()} == pinned
    for name, entry in manifest.items():
        # A hand edit (or a partial regeneration) shows here: `make graphiql-assets`.
        assert hashlib.sha256((STATIC / name).read_bytes()).hexdigest() == entry["sha256"], name
        assert entry["license"] == "MIT", name
        assert (STATIC / entry["license_file"]).read_text().strip(), name


def test_the_page_loads_only_its_own_assets_by_versioned_urls() -> None:
    html = page()
    urls = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert "http" not in html.replace("http-equiv", "")
    loaded = [url for url in urls if url != "data:,"]
    assert len(loaded) == len(SCRIPTS) + len(STYLES)
    for url in loaded:
        name, version = re.fullmatch(r"/graphiql/assets/([\w.-]+)\?v=([0-9a-f]{16})", url).groups()  # type: ignore[union-attr]
        assert version == hashlib.sha256((STATIC / name).read_bytes()).hexdigest()[:16]
    assert set(OWN_FILES) <= {url.split("/")[-1].split("?")[0] for url in loaded}
    # No inline script: the Content-Security-Policy would refuse it.
    assert re.findall(r"<script>", html) == []
