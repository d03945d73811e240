"""Each projector's fold equals its old per-event MongoDB update operators, on generated
histories: the same documents, every field (`position` included), after every event.

The oracle is tests/reference/update_projectors.py, applied in memory by its evaluator;
tests/integration/test_reference_evaluator.py checks the evaluator against MongoDB.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings

from tests.reference.histories import history, steps
from tests.reference.update_projectors import REFERENCE, evaluate
from workers.projection import DocKey, Document, fold_events
from workers.projectors import PROJECTORS


@settings(max_examples=300, deadline=None)
@given(steps)
def test_every_fold_equals_the_update_operators_event_by_event(
    draws: list[tuple[str, int]],
) -> None:
    events = history(draws)
    for name, projector in PROJECTORS.items():
        folded: dict[DocKey, Document] = {}
        expected: dict[DocKey, dict[str, Any]] = {}
        for event in events:
            fold_events(projector, [event], folded)
            evaluate(REFERENCE[name](event), expected)
            assert folded == expected, (name, event)
