"""The worker's collector settings (in a child process: they are process-wide)."""

import json
import subprocess
import sys

from energywatch.garbage_collection import OLDER_THRESHOLDS, YOUNG_THRESHOLD

_CHILD = """
import gc, json
before = gc.get_freeze_count()
from energywatch.garbage_collection import tune_for_batches
tune_for_batches()
print(json.dumps([gc.get_threshold(), before, gc.get_freeze_count()]))
"""


def test_tuning_freezes_what_start_up_built_and_collects_young_objects_less_often():
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, check=True)
    threshold, frozen_before, frozen_after = json.loads(out.stdout)
    assert tuple(threshold) == (YOUNG_THRESHOLD, *OLDER_THRESHOLDS)
    assert YOUNG_THRESHOLD > 700  # CPython's default, which the worker outgrew
    assert frozen_before == 0
    assert frozen_after > 1000  # the modules and objects imported so far
