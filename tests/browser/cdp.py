"""Headless Chromium driven over the DevTools protocol, with nothing but the `websockets`
package: a page to load, scripts to evaluate, every request and console message seen.

The browser resolves no host name but 127.0.0.1 (--host-resolver-rules), so a page that
needed the internet would fail here exactly as it would offline.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

START_BUDGET_S = 60
CALL_BUDGET_S = 60
_LISTENING = re.compile(r"DevTools listening on (ws://\S+)")


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        raise RuntimeError("no chromium on PATH: `make test-browser` installs Debian's package")
    return path


@dataclass
class Page:
    """One tab: what it requested, what its console said, and calls into it."""

    conn: ClientConnection
    requests: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _calls: dict[int, asyncio.Future[dict[str, Any]]] = field(default_factory=dict)
    _loaded: asyncio.Event = field(default_factory=asyncio.Event)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self._ids)
        answer = asyncio.get_running_loop().create_future()
        self._calls[call_id] = answer
        await self.conn.send(json.dumps({"id": call_id, "method": method, "params": params}))
        async with asyncio.timeout(CALL_BUDGET_S):
            reply = await answer
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def open(self, url: str) -> None:
        """Navigate and wait for the load event."""
        self._loaded.clear()
        await self.call("Page.navigate", url=url)
        async with asyncio.timeout(CALL_BUDGET_S):
            await self._loaded.wait()

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (awaited when it is a promise)."""
        result = await self.call(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise AssertionError(details.get("exception", {}).get("description", details))
        return result["result"].get("value")

    async def wait_for(self, condition: str, what: str, budget_ms: int = 30_000) -> Any:
        """Resolve once the expression `condition` is truthy, re-checked on every DOM change
        (a MutationObserver in the page: no polling); its value."""
        return await self.evaluate(f"""new Promise((resolve, reject) => {{
            const check = () => {{
                let value;
                try {{ value = ({condition}); }} catch (e) {{ value = undefined; }}
                if (value) {{ observer.disconnect(); clearTimeout(timer); resolve(value); }}
            }};
            const observer = new MutationObserver(check);
            observer.observe(document, {{subtree: true, childList: true, characterData: true,
                                         attributes: true}});
            const timer = setTimeout(() => {{
                observer.disconnect();
                reject(new Error({json.dumps("not within the budget: " + what)}));
            }}, {budget_ms});
            check();
        }})""")

    async def screenshot(self, path: Path) -> Path:
        shot = await self.call("Page.captureScreenshot", format="png")
        await asyncio.to_thread(_write, path, base64.b64decode(shot["data"]))
        return path

    async def _read(self) -> None:
        async for raw in self.conn:
            message = json.loads(raw)
            if "id" in message:
                answer = self._calls.pop(message["id"], None)
                if answer is not None and not answer.done():
                    answer.set_result(message)
                continue
            method, params = message.get("method"), message.get("params", {})
            if method == "Network.requestWillBeSent":
                self.requests.append(params["request"]["url"])
            elif method == "Network.webSocketCreated":
                self.requests.append(params["url"])
            elif method == "Runtime.consoleAPICalled" and params["type"] in ("error", "warning"):
                self.console.append(" ".join(str(a.get("value", a)) for a in params["args"]))
            elif method == "Runtime.exceptionThrown":
                self.console.append(str(params["exceptionDetails"]))
            elif method == "Log.entryAdded" and params["entry"]["level"] in ("error", "warning"):
                self.console.append(params["entry"]["text"])
            elif method == "Page.loadEventFired":
                self._loaded.set()


@asynccontextmanager
async def chromium_page(width: int = 1400, height: int = 900) -> AsyncIterator[Page]:
    """A headless Chromium with one tab, closed (and its profile removed) on exit."""
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        process = await asyncio.create_subprocess_exec(
            chromium_path(), "--headless=new", "--no-sandbox", "--disable-gpu",
            "--remote-debugging-port=0", f"--user-data-dir={profile}",
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            "--no-first-run", "--no-default-browser-check", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--disable-extensions",
            f"--window-size={width},{height}", "about:blank",
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        try:
            browser_url = await _devtools_url(process)
            page_url = await _page_target(browser_url)
            async with connect(page_url, max_size=None, proxy=None) as conn:
                page = Page(conn)
                reader = asyncio.create_task(page._read())
                try:
                    for domain in ("Page", "Network", "Runtime", "Log"):
                        await page.call(f"{domain}.enable")
                    yield page
                finally:
                    await conn.close()
                    with contextlib.suppress(Exception):
                        await reader
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


async def _devtools_url(process: asyncio.subprocess.Process) -> str:
    assert process.stderr is not None
    seen: list[str] = []
    async with asyncio.timeout(START_BUDGET_S):
        while line := (await process.stderr.readline()).decode(errors="replace"):
            seen.append(line)
            if found := _LISTENING.search(line):
                # Keep reading what it prints, or a full pipe would stall the browser.
                asyncio.get_running_loop().create_task(_drain(process.stderr))
                return found[1]
    raise RuntimeError("chromium exited before it listened:\n" + "".join(seen[-20:]))


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


async def _page_target(browser_url: str) -> str:
    port = browser_url.split("://", 1)[1].split("/", 1)[0]
    async with httpx.AsyncClient(base_url=f"http://{port}", trust_env=False) as http:
        targets = (await http.get("/json/list")).json()
    for target in targets:
        if target["type"] == "page":
            url: str = target["webSocketDebuggerUrl"]
            return url
    raise RuntimeError(f"chromium opened no page: {targets}")
