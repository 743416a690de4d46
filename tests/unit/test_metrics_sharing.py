"""Metrics shared across `serve`'s processes, and put back for whoever runs on afterwards."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, values

from shoprelay.web.metrics import exposition, shared_across_processes


def test_values_made_inside_are_summed_from_files_and_everything_is_put_back() -> None:
    value_class = values.ValueClass
    with shared_across_processes() as folder:
        counter = Counter("shoprelay_test_shared_total", "test", ["kind"], registry=None)
        counter.labels("a").inc(3)
        assert any(folder.iterdir())  # the value lives in a file other processes can read
        assert b'shoprelay_test_shared_total{kind="a"} 3.0' in exposition()
    assert values.ValueClass is value_class
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    assert not folder.exists()
    after = Counter("shoprelay_test_after_total", "test", registry=CollectorRegistry())
    after.inc()  # a plain in-memory value again: no file, no folder needed
