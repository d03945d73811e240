"""The pure parts of /metrics: operation reports from the schema extension, bounded
operation-name labels, batch-timing histograms, and counts added up across processes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.metrics import OTHER, ApiMetrics
from app.settings import PROJECT_ROOT
from reads.queries import Served
from schema.build import build_schema
from schema.consistency import ServedFrom
from schema.observe import OperationReport
from workers.batch_timings import BUCKETS, BatchTimings, histogram


class Reports:
    def __init__(self) -> None:
        self.finished: list[OperationReport] = []
        self.open = 0

    def operation_finished(self, report: OperationReport) -> None:
        self.finished.append(report)

    def subscription_opened(self) -> None:
        self.open += 1

    def subscription_closed(self) -> None:
        self.open -= 1


def samples(metrics: ApiMetrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    text = generate_latest(metrics.registry).decode()
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


async def test_the_extension_reports_name_kind_and_coded_errors() -> None:
    reports = Reports()
    schema = build_schema(observer=reports)
    await schema.execute("query Named { __typename }")
    await schema.execute("{ __typename }")
    await schema.execute("{ __typename")
    await schema.execute("query Wrong { nope }")
    named, anonymous, unparsed, invalid = reports.finished
    assert (named.name, named.kind, named.error_codes) == ("Named", "query", ())
    assert (anonymous.name, anonymous.kind) == ("(anonymous)", "query")
    assert (unparsed.name, unparsed.error_codes) == ("(invalid)", ("GRAPHQL_PARSE_FAILED",))
    assert (invalid.name, invalid.kind) == ("(invalid)", "unknown")
    assert invalid.error_codes == ("GRAPHQL_VALIDATION_FAILED",)
    assert all(report.consistency is None and report.seconds >= 0 for report in reports.finished)


def test_consistency_outcome_is_the_least_fresh_read() -> None:
    def least_fresh(*reads: Served | None) -> str | None:
        served_from = ServedFrom()
        for served in reads:
            served_from.record(served)
        return served_from.least_fresh()

    assert least_fresh() is None
    assert least_fresh(None) is None  # a read without a token
    assert least_fresh(Served("projection", 5)) == "projection"
    assert least_fresh(Served("projection", 5), Served("projection", 5, True)) == "waited"
    assert least_fresh(Served("projection", 5, True), Served("write_store", 3)) == "write_store"


def test_operation_names_past_the_bound_share_one_label() -> None:
    metrics = ApiMetrics(max_operation_names=5)  # three are taken by the fixed labels

    def finished(name: str) -> None:
        metrics.operation_finished(OperationReport(name, "query", 0.01, (), None))

    for name in ("First", "Second", "Third", "First", "X" * 65):
        finished(name)
    counted = samples(metrics, "shop_graphql_requests_total")
    by_name = {dict(labels)["operation"]: value for labels, value in counted.items()}
    assert by_name == {"First": 2, "Second": 1, OTHER: 2}


def test_consistency_and_errors_are_counted_by_label() -> None:
    metrics = ApiMetrics(max_operation_names=50)
    report = OperationReport("Q", "query", 0.01, ("BAD_USER_INPUT", "FORBIDDEN"), "waited")
    metrics.operation_finished(report)
    errors = samples(metrics, "shop_graphql_errors_total")
    assert errors == {(("code", "BAD_USER_INPUT"),): 1, (("code", "FORBIDDEN"),): 1}
    assert samples(metrics, "shop_consistency_reads_total") == {(("served_from", "waited"),): 1}
    outcome = samples(metrics, "shop_graphql_requests_total")
    assert outcome == {(("kind", "query"), ("operation", "Q"), ("outcome", "error")): 1}


def test_batch_timings_flush_into_a_cumulative_histogram() -> None:
    timings = BatchTimings()
    assert timings.flush() == {}
    for seconds in (0.001, 0.004, 0.3, 60.0):
        timings.observe(seconds)
    state: dict[str, Any] = {}
    for path, increment in timings.flush().items():  # what MongoDB's $inc does
        field, key = path.split(".")
        state.setdefault(field, {})
        state[field][key] = state[field].get(key, 0) + increment
    assert timings.flush() == {}  # counted once
    recorded = histogram(state)
    assert recorded.count == 4
    assert abs(recorded.total_s - 60.305) < 1e-9
    cumulative = dict(recorded.buckets)
    assert cumulative[BUCKETS[0]] == 2  # 0.005
    assert cumulative[0.25] == 2
    assert cumulative[0.5] == 3
    assert cumulative[float("inf")] == 4
    assert histogram({}).count == 0


WRITE_ONE = """
from app.metrics import ApiMetrics
from schema.observe import OperationReport
ApiMetrics(10).operation_finished(OperationReport("Q", "query", 0.01, (), "projection"))
"""
READ_ALL = """
from prometheus_client import generate_latest
from app.metrics import ApiMetrics
print(generate_latest(ApiMetrics(10).own_families()).decode())
"""


def test_with_a_multiprocess_dir_metrics_add_up_across_processes(tmp_path: Path) -> None:
    env = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}

    def python(code: str) -> str:
        done = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout

    python(WRITE_ONE)
    python(WRITE_ONE)
    families = text_string_to_metric_families(python(READ_ALL))
    values = {
        (sample.name, sample.labels.get("served_from")): sample.value
        for family in families
        for sample in family.samples
    }
    assert values[("shop_consistency_reads_total", "projection")] == 2
    assert values[("shop_graphql_request_duration_seconds_count", None)] == 2
