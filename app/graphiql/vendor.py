"""Regenerate GraphiQL's vendored assets from their npm packages: `make graphiql-assets`.

The page must work with no network but loopback, so every script and style it loads is
served by the app from `static/`. This takes each pinned package with `npm pack` (the
registry's own tarball), copies the files the page loads and the package's licence, and
writes `assets.json`: for each file its package, version, licence and sha256, which the app
uses for cache-busting URLs and a unit test checks against the files.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
STATIC = HERE / "static"
MANIFEST = HERE / "assets.json"


@dataclass(frozen=True)
class Pin:
    package: str
    version: str
    # File in the package -> name served under /graphiql/assets/.
    files: dict[str, str]


# The versions strawberry's own GraphiQL page pinned; the explorer plugin 1.x is the one
# whose UMD build works with graphiql 3's globals (GraphiQL.React, GraphiQL.GraphQL).
PINS = (
    Pin("react", "18.2.0", {"umd/react.production.min.js": "react.production.min.js"}),
    Pin(
        "react-dom",
        "18.2.0",
        {"umd/react-dom.production.min.js": "react-dom.production.min.js"},
    ),
    Pin(
        "graphiql",
        "3.8.3",
        {"graphiql.min.js": "graphiql.min.js", "graphiql.min.css": "graphiql.min.css"},
    ),
    Pin(
        "@graphiql/plugin-explorer",
        "1.0.2",
        {"dist/index.umd.js": "plugin-explorer.umd.js", "dist/style.css": "plugin-explorer.css"},
    ),
)
LICENCE_FILES = ("LICENSE", "LICENSE.md", "LICENSE.txt")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _pack(pin: Pin, into: Path) -> Path:
    spec = f"{pin.package}@{pin.version}"
    out = subprocess.run(
        ["npm", "pack", spec, "--silent", "--pack-destination", str(into)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return into / out.stdout.strip().splitlines()[-1]


def _vendor(pin: Pin, tarball: Path) -> dict[str, dict[str, str]]:
    entries: dict[str, dict[str, str]] = {}
    with tarfile.open(tarball) as archive:

        def read(name: str) -> bytes | None:
            try:
                member = archive.extractfile(f"package/{name}")
            except KeyError:
                return None
            return member.read() if member is not None else None

        package_json = json.loads(read("package.json") or b"{}")
        licence = str(package_json.get("license", "see the package"))
        licence_text = next((t for f in LICENCE_FILES if (t := read(f)) is not None), None)
        licence_name = f"LICENSE.{pin.package.replace('@', '').replace('/', '-')}.txt"
        if licence_text is None:  # the package ships none: its package.json names it
            licence_text = (
                f"{pin.package} {pin.version}: licence {licence} (package.json)\n".encode()
            )
        (STATIC / licence_name).write_bytes(licence_text)
        for source, served in pin.files.items():
            data = read(source)
            if data is None:
                raise SystemExit(f"{pin.package}@{pin.version} has no {source}")
            (STATIC / served).write_bytes(data)
            entries[served] = {
                "package": pin.package,
                "version": pin.version,
                "source": source,
                "license": licence,
                "license_file": licence_name,
                "sha256": sha256(data),
            }
    return entries


def main() -> int:
    STATIC.mkdir(exist_ok=True)
    manifest: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for pin in PINS:
            manifest |= _vendor(pin, _pack(pin, Path(tmp)))
    buffer = io.StringIO()
    json.dump(manifest, buffer, indent=2, sort_keys=True)
    MANIFEST.write_text(buffer.getvalue() + "\n")
    for served, entry in sorted(manifest.items()):
        print(f"{served}: {entry['package']}@{entry['version']} ({entry['license']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
