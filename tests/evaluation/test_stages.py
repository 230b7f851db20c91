"""The stage cache both the demo and the bench resume from: one file per finished stage, keyed by its settings."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from pluralign.evaluation.results import Result
from pluralign.evaluation.stages import StageCache, StageOutput


def _stage(calls: list[int], value: float = 0.5):
    def fn() -> StageOutput:
        calls.append(1)
        return StageOutput([Result("pets", "bt", "new-users", "accuracy", value, 10, 0.4, 0.6),
                            Result("pets", "bt", "all", "win_rate", math.nan, 0)],
                           {"probs": np.array([0.1, 0.2]), "n": np.int64(3)})
    return fn


def test_a_finished_stage_is_read_back_not_run_again(tmp_path):
    calls: list[int] = []
    first = StageCache(tmp_path / "stages", {"seed": 0}).run("love", _stage(calls))
    again = StageCache(tmp_path / "stages", {"seed": 0}).run("love", _stage(calls, value=0.9))
    assert len(calls) == 1 and first.seconds is not None
    assert [r.value for r in again.results][0] == 0.5 and math.isnan(again.results[1].value)
    # Artefacts look the same fresh and cached: what JSON gives back (arrays become lists, numpy scalars numbers).
    assert first.artefacts == again.artefacts == {"probs": [0.1, 0.2], "n": 3}
    saved = json.loads((tmp_path / "stages" / "love.json").read_text())
    assert set(saved) == {"fingerprint", "seconds", "results", "artefacts"}
    StageCache(tmp_path / "stages", {"seed": 0}).run("love", _stage(calls), resume=False)
    assert len(calls) == 2


def test_a_strict_cache_refuses_another_configuration(tmp_path):
    StageCache(tmp_path, {"seed": 0, "sizes": (1, 2)})
    StageCache(tmp_path, {"seed": 0, "sizes": [1, 2]})  # the same settings, as JSON reads them back
    with pytest.raises(ValueError, match="another configuration"):
        StageCache(tmp_path, {"seed": 1, "sizes": [1, 2]})


def test_a_lenient_cache_runs_a_stage_again_when_its_settings_changed(tmp_path):
    calls: list[int] = []
    StageCache(tmp_path, {"rm": {"max_steps": 30}}, strict=False).run("bt", _stage(calls))
    out = StageCache(tmp_path, {"rm": {"max_steps": 60}}, strict=False).run("bt", _stage(calls, value=0.7))
    assert len(calls) == 2 and out.results[0].value == 0.7
    assert not (tmp_path / "config.json").exists()
