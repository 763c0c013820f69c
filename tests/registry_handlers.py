"""Print what CloudFormation's handler of each resource type in a SAM template needs, as JSON.

Run by the aws-sam-cli judge's Python, which has both the SAM translator and cfn-lint's bundled
registry schemas: `python registry_handlers.py template.yaml <region>` prints
{resource type: {"handlers": {handler: [permission, ...]}, "properties": [name, ...]}} for the
create, read, update and delete handlers of every resource type the SAM transform expands the
template into, and the properties its resources of that type set (a mapping's keys as "Name.Key").
With `--expanded` after the region it prints the expanded template itself.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from cfnlint.schema.manager import PROVIDER_SCHEMA_MANAGER
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

HANDLERS = ("create", "read", "update", "delete")


class NoManagedPolicies:
    """SAM looks managed policy names up in IAM; the template names its policies by ARN."""

    def load(self) -> dict[str, str]:
        return {}


def expand(path: str, region: str) -> dict[str, Any]:
    """The template as the SAM transform expands it, as CloudFormation will receive it."""
    with open(path, encoding="utf-8") as file:
        template: dict[str, Any] = yaml_parse(file.read())
    for resource in template["Resources"].values():  # `sam package` replaces local paths with S3 URIs
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri", "DefinitionUri"):
            if isinstance(properties.get(key), str) and not properties[key].startswith("s3://"):
                properties[key] = f"s3://artifacts/{key}"
    expanded: dict[str, Any] = transform(template, {"AWS::Region": region}, NoManagedPolicies())
    return expanded


def main(path: str, region: str, *options: str) -> None:
    expanded = expand(path, region)
    if options == ("--expanded",):
        json.dump(expanded, sys.stdout, indent=1)
        return
    properties_set: dict[str, set[str]] = {}
    for resource in expanded["Resources"].values():
        names = properties_set.setdefault(resource["Type"], set())
        for name, value in resource.get("Properties", {}).items():
            names.add(name)
            if isinstance(value, dict):
                names.update(f"{name}.{inner}" for inner in value)
    needs = {}
    for kind, properties in sorted(properties_set.items()):
        handlers = PROVIDER_SCHEMA_MANAGER.get_resource_schema(region, kind).schema.get("handlers", {})
        needs[kind] = {
            "handlers": {name: handlers.get(name, {}).get("permissions", []) for name in HANDLERS},
            "properties": sorted(properties),
        }
    json.dump(needs, sys.stdout, indent=1)


if __name__ == "__main__":
    main(*sys.argv[1:])
