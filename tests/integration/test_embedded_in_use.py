"""A server some process uses is never stopped or moved by another one joining it: when it
does not answer, the newcomer waits, then gives up with a clear error and leaves it running.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import psutil
import pytest

from app.embedded import EmbeddedServiceError, _manager, _state, embedded_services


def test_a_server_in_use_that_does_not_answer_is_left_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    monkeypatch.setattr(_manager, "IN_USE_PATIENCE_S", 1.0)
    with embedded_services(data_dir, postgres=False, mongo=False, redis=True) as urls:
        before = _state.load(data_dir)["redis"]
        assert before.server is not None
        os.kill(before.server.pid, signal.SIGSTOP)  # alive, but answers nothing
        try:
            with (
                pytest.raises(EmbeddedServiceError, match=r"does not answer.*left running"),
                embedded_services(data_dir, postgres=False, mongo=False, redis=True),
            ):
                pytest.fail("must not get here")
        finally:
            os.kill(before.server.pid, signal.SIGCONT)
        after = _state.load(data_dir)["redis"]
        assert after.server == before.server
        assert after.url == urls.redis_url
        assert psutil.Process(before.server.pid).status() != psutil.STATUS_ZOMBIE
        assert _manager.SERVERS["redis"].is_healthy(after.url or "")
