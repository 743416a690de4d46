"""Metrics without labels made before `serve` shares metrics across processes."""

from __future__ import annotations

from prometheus_client import REGISTRY, Gauge

from shoprelay.web.metrics import exposition, shared_across_processes


def test_a_metric_made_before_sharing_is_shared_too() -> None:
    """The command line imports modules whose metrics have no labels before `serve` starts
    sharing; their values must still reach the files every process reads."""
    gauge = Gauge("shoprelay_test_early_seconds", "test", multiprocess_mode="max")
    try:
        with shared_across_processes() as folder:
            gauge.set(42)
            assert any(folder.iterdir())
            assert b"shoprelay_test_early_seconds 42.0" in exposition()
        gauge.set(7)  # an in-memory value again once sharing ends
        assert REGISTRY.get_sample_value("shoprelay_test_early_seconds") == 7
    finally:
        REGISTRY.unregister(gauge)
