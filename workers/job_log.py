"""Keeps the worker's INFO log about what happens: arq's lines for routine runs go to DEBUG.

arq logs every job run twice at INFO ("→ job()" and "← job ●"). The catch-up cron runs
every second on every worker, so at INFO those lines were most of the log and buried the
nudges, lease changes and failures around them. A failed run is still logged at its level.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

ARQ_LOGGER = "arq.worker"


class RoutineRunsToDebug(logging.Filter):
    """Lowers arq's start and finish lines of the named jobs from INFO to DEBUG."""

    def __init__(self, job_names: Iterable[str]) -> None:
        super().__init__()
        self._names = tuple(job_names)
        self._suffixes = tuple(f":{name}" for name in self._names)

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.levelno != logging.INFO or not isinstance(args, tuple) or len(args) < 2:
            return True
        # arq's job lines name the job in their second argument: a cron job by its name, any
        # other as "<job id>:<function name>".
        job = str(args[1])
        if job not in self._names and not job.endswith(self._suffixes):
            return True
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def quiet_routine_runs(job_names: Iterable[str]) -> None:
    """Sends arq's per-run lines of `job_names` to DEBUG (once per process)."""
    arq_log = logging.getLogger(ARQ_LOGGER)
    if not any(isinstance(f, RoutineRunsToDebug) for f in arq_log.filters):
        arq_log.addFilter(RoutineRunsToDebug(job_names))
