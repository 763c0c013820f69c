"""An EventBridge service's template is valid on every bus its EventBusName can name.

The render's own gates judge template.yaml with the parameter's default, the stage's own bus.
The rule, its permission, the queue policy, the alarms and the outputs all branch on two
conditions (CreatesOrdersBus, OnDefaultBus): here cfn-lint and `sam validate --lint` (the SAM
translator) judge the same template with the default bus and with a named bus as the default.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

import judges
from test_render_matrix import MATRIX, Combination, Service
from test_render_matrix import render as _render  # noqa: F401 - the render matrix's fixture, requested by name

OWN_BUS_DEFAULT = '  EventBusName:\n    Type: String\n    Default: ""\n'


# The bus conditions and everything that branches on them are the eventbridge slot's; no
# database slot touches them, so one combination judges them (6 judge runs were 44 s of CPU).
@pytest.fixture(params=[pytest.param(c, id=c.id) for c in MATRIX if c.id == "eventbridge-none"])
def service(request: pytest.FixtureRequest) -> Service:
    render: Callable[[Combination], Service] = request.getfixturevalue("_render")
    return render(request.param)


@pytest.mark.parametrize("bus", ["default", "orders"])
def test_the_template_is_valid_on_a_bus_the_owner_names(service: Service, bus: str, tmp_path: Path) -> None:
    text = (service.project / "template.yaml").read_text()
    assert text.count(OWN_BUS_DEFAULT) == 1, "EventBusName no longer defaults to the stage's own bus"
    for part in ("src", "deploy_hooks", "database"):
        if (service.project / part).is_dir():
            shutil.copytree(service.project / part, tmp_path / part)
    (tmp_path / "template.yaml").write_text(text.replace(OWN_BUS_DEFAULT, OWN_BUS_DEFAULT.replace('""', f'"{bus}"')))
    region = service.answers["aws_region"]
    judges.assert_passes(judges.cfn_lint(tmp_path, ["template.yaml"], region), f"cfn-lint on {bus}")
    judges.assert_passes(judges.sam_validate(tmp_path, "template.yaml", region), f"sam validate --lint on {bus}")
