"""Each simulator's --help lists every control endpoint it serves under /_sim/."""

from __future__ import annotations

import re

import pytest
from starlette.routing import Route
from typer.testing import CliRunner

from shoprelay.cli.main import app
from shoprelay.sim.klaviyo_control import CONTROL_ROUTES as KLAVIYO_CONTROL
from shoprelay.sim.shipstation_control import CONTROL_ROUTES as SHIPSTATION_CONTROL


@pytest.mark.parametrize(
    ("simulator", "routes"), [("klaviyo", KLAVIYO_CONTROL), ("shipstation", SHIPSTATION_CONTROL)]
)
def test_help_lists_every_control_endpoint(simulator: str, routes: list[Route]) -> None:
    """A route added to the simulator and left out of its help fails here."""
    result = CliRunner().invoke(app, ["sim", simulator, "--help"])
    assert result.exit_code == 0, result.output
    for route in routes:
        assert route.path.startswith("/_sim/")
        # Path parameters read as capitals in the help: /_sim/orders/ID/ACTION.
        path = re.sub(r"\\\{[^}]*\\\}", "[A-Z]+", re.escape(route.path))
        for method in (route.methods or set()) - {"HEAD"}:
            assert re.search(rf"{method} +{path}(\?\S*)?\s", result.output), (
                f"{method} {route.path}"
            )
