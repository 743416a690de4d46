"""Prometheus metrics of this process or, under `serve`, summed over all of its processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Metric,
    generate_latest,
    multiprocess,
    values,
)
from prometheus_client.metrics import MetricWrapperBase

_SHARED = "PROMETHEUS_MULTIPROC_DIR"


@contextlib.contextmanager
def shared_across_processes() -> Iterator[Path]:
    """For as long as the block runs, keep every metric value created here and in forks in
    a file in a scratch folder, so that any process can expose the sum of them all.

    prometheus_client picks its value class when it is imported, from an environment
    variable; the command line has imported it already, so the class is switched too. Enter
    this before any labelled metric is first used and before the app's own metrics are
    imported. Metrics without labels made before it (the command line imports some) get a
    value of the new class here. On exit all is put back, for a caller that goes on in the
    same process.
    """
    folder = Path(tempfile.mkdtemp(prefix="shoprelay-metrics-"))
    before = os.environ.get(_SHARED), values.ValueClass
    os.environ[_SHARED] = str(folder)
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]
    _renew_unlabelled_values()
    try:
        yield folder
    finally:
        if before[0] is None:
            os.environ.pop(_SHARED, None)
        else:
            os.environ[_SHARED] = before[0]
        values.ValueClass = before[1]
        _renew_unlabelled_values()
        shutil.rmtree(folder, ignore_errors=True)


def _renew_unlabelled_values() -> None:
    """Give each registered metric without labels a fresh value of the current value class.

    A labelled metric makes a value per label set when first used; one without labels made
    its only value when it was created, of the class then in force. prometheus_client has no
    public way to list metrics or renew a value: these are its own private names.
    """
    for collector in list(REGISTRY._collector_to_names):
        if isinstance(collector, MetricWrapperBase) and not collector._labelnames:
            collector._metric_init()  # type: ignore[no-untyped-call]


def exposition() -> bytes:
    """The text /metrics answers with."""
    return generate_latest(_registry())


def _registry() -> CollectorRegistry:
    """This process's registry, or under `serve` one that reads every process's files."""
    if _SHARED not in os.environ:
        return REGISTRY
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def sample_value(name: str) -> float:
    """One sample's value, summed over every process under `serve`; 0 if none is recorded."""
    return _registry().get_sample_value(name) or 0.0


def collect() -> Iterable[Metric]:
    """Every metric, as `exposition` would write them."""
    return _registry().collect()
