"""Read template.yaml as plain data, and resolve the few intrinsics local runs need.

CloudFormation's short tags (``!Ref``, ``!Sub``, ``!GetAtt``...) become their
long ``{"Fn::...": ...}`` form, so tests can assert on the template as the
owner edits it, and local runs name resources exactly as a deploy would.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import yaml

# libyaml's parser reads this template in a tenth of the pure-Python one's time, and
# every test that emulates the service reads it; PyYAML's wheels ship it.
try:
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # a PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "template.yaml"


class _CloudFormationLoader(_SafeLoader):
    """SafeLoader that knows CloudFormation's short-form tags."""


def _short_form(loader: yaml.constructor.SafeConstructor, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(cast(yaml.MappingNode, node), deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _short_form)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as it is on disk now; each caller gets its own copy to change."""
    # A copy costs a tenth of a parse, and a test run reads the file once per test.
    return copy.deepcopy(_parse(path, path.stat().st_mtime_ns))


@functools.cache
def _parse(path: Path, modified_ns: int) -> dict[str, Any]:
    with path.open(encoding="utf-8") as stream:
        return cast(dict[str, Any], yaml.load(stream, Loader=_CloudFormationLoader))  # noqa: S506 - SafeLoader subclass


def resources_of_type(template: Mapping[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        logical_id: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == resource_type
    }


def deployment_hooks(template: Mapping[str, Any]) -> set[str]:
    """Logical ids of the functions CodeDeploy runs around a deployment (DeploymentPreference.Hooks)."""
    return {
        hook["Ref"]
        for function in resources_of_type(template, "AWS::Serverless::Function").values()
        for hook in function["Properties"].get("DeploymentPreference", {}).get("Hooks", {}).values()
    }


def deployment_steps(template: Mapping[str, Any]) -> set[str]:
    """The deployment hooks, and the functions a hook runs besides the one it judges (a migration).

    A hook names each function it invokes by the version this deployment publishes (``!Ref X.Version``).
    """
    functions = resources_of_type(template, "AWS::Serverless::Function")
    hooks = deployment_hooks(template)
    judged = {
        logical_id for logical_id, function in functions.items() if function["Properties"].get("DeploymentPreference")
    }
    invoked = {
        value["Ref"].removesuffix(".Version")
        for hook in hooks
        for value in functions[hook]["Properties"].get("Environment", {}).get("Variables", {}).values()
        if isinstance(value, dict) and str(value.get("Ref", "")).endswith(".Version")
    }
    return hooks | (invoked - judged)


def the_function(template: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The service's one function, the one its trigger invokes: (logical id, properties)."""
    hooks = deployment_steps(template)
    functions = {
        logical_id: function
        for logical_id, function in resources_of_type(template, "AWS::Serverless::Function").items()
        if logical_id not in hooks
    }
    if len(functions) != 1:
        raise ValueError(f"expected one function besides the deployment hooks, found {sorted(functions)}")
    logical_id, function = next(iter(functions.items()))
    return logical_id, function["Properties"]


class Resolver:
    """Resolves intrinsics (Ref, Sub, GetAtt, If, Select, Split, Join) and conditions for a local stack."""

    def __init__(
        self,
        template: Mapping[str, Any],
        stack_name: str,
        region: str,
        account_id: str,
        parameters: Mapping[str, str] | None = None,
    ) -> None:
        self.template = template
        self.pseudo = {
            "AWS::StackName": stack_name,
            "AWS::Region": region,
            "AWS::AccountId": account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        self.parameters = {name: str(spec.get("Default", "")) for name, spec in template.get("Parameters", {}).items()}
        self.parameters.update(parameters or {})
        self.physical_ids: dict[str, str] = {}
        self.attributes: dict[tuple[str, str], str] = {}

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict) and len(value) == 1:
            ((key, argument),) = value.items()
            if key == "Ref":
                return self._ref(argument)
            if key == "Fn::Sub":
                return self._sub(argument)
            if key == "Fn::GetAtt":
                return self.attributes[(argument[0], argument[1])]
            if key == "Fn::If":
                name, if_true, if_false = argument
                return self.resolve(if_true if self.condition(name) else if_false)
            if key == "Fn::Select":
                index, items = self.resolve(argument)
                return items[int(index)]
            if key == "Fn::Split":
                delimiter, text = argument
                return str(self.resolve(text)).split(delimiter)
            if key == "Fn::Join":
                delimiter, items = argument
                return delimiter.join(str(item) for item in self.resolve(items))
            if key.startswith("Fn::"):
                raise NotImplementedError(f"local runs cannot resolve {key}; use Ref, Fn::Sub or Fn::GetAtt here")
        if isinstance(value, dict):
            return {key: self.resolve(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        return value

    def condition(self, name: str) -> bool:
        """The value of the template's condition ``name`` for this stack's parameters."""
        return self._condition_value(self.template.get("Conditions", {})[name])

    def _condition_value(self, value: Any) -> bool:
        ((key, argument),) = value.items()
        if key == "Condition":
            return self.condition(argument)
        if key == "Fn::Equals":
            left, right = (self.resolve(item) for item in argument)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self._condition_value(argument[0])
        if key == "Fn::And":
            return all(self._condition_value(item) for item in argument)
        if key == "Fn::Or":
            return any(self._condition_value(item) for item in argument)
        raise NotImplementedError(f"local runs cannot evaluate {key} in a condition")

    def exists(self, resource: Mapping[str, Any]) -> bool:
        """Whether a stack with these parameters creates ``resource`` (its Condition, if any, holds)."""
        return "Condition" not in resource or self.condition(resource["Condition"])

    def _ref(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.physical_ids[name]

    def _sub(self, argument: str | list[Any]) -> str:
        text, variables = (argument, {}) if isinstance(argument, str) else (argument[0], argument[1])

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name:
                logical_id, attribute = name.split(".", 1)
                return self.attributes[(logical_id, attribute)]
            return self._ref(name)

        return re.sub(r"\$\{([^}!]+)\}", replace, text)
