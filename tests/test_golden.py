"""Golden test: the values every tiny run logs (losses, statistics, evaluation returns and
bonuses, progress.csv rows) are bit-identical to ``tests/golden/values.json``, recorded
before the trainer/agent/component restructuring. A change in behaviour fails here; if it
is intended, re-record with ``python tests/golden/record.py`` and say why in the commit."""
import json
import os

import pytest

from tests.golden.record import CASES, capture

VALUES = json.load(open(os.path.join(os.path.dirname(__file__), "golden", "values.json")))


@pytest.mark.parametrize("case", sorted(CASES))
def test_logged_values_are_unchanged(case):
    got, want = capture(case), VALUES[case]
    assert sorted(got) == sorted(want), f"logged tags differ: {set(got) ^ set(want)}"
    diff = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
    assert not diff, f"{len(diff)} of {len(want)} values changed, e.g. {list(diff.items())[:5]}"
