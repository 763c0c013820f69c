from __future__ import annotations

from typing import Any

import pytest

from cfn_template import load_template, resources_of_type, the_function


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="session")
def function(template: dict[str, Any]) -> dict[str, Any]:
    return the_function(template)[1]


@pytest.fixture(scope="session")
def alarms(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        logical_id: alarm["Properties"]
        for logical_id, alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").items()
    }
