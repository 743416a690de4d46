"""The ShipStation simulator's fixed window reports whole seconds, as ShipStation does."""

from __future__ import annotations

import pytest

from shoprelay.sim.shipstation_state import FixedWindow


# Clock readings where (now + 60) - now is not exactly 60 in floating point.
@pytest.mark.parametrize("now", [8161.962517661547, 262100.49071525232, 234.43537133582825])
def test_a_fresh_window_resets_in_its_full_length(now: float) -> None:
    window = FixedWindow(limit=40, seconds=60.0)
    assert window.hit(now)
    assert window.headers(now) == {
        "X-Rate-Limit-Limit": "40",
        "X-Rate-Limit-Remaining": "39",
        "X-Rate-Limit-Reset": "60",
    }
    assert window.headers(now + 59.5)["X-Rate-Limit-Reset"] == "1"
