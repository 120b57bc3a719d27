"""The Ray resources a node advertises and a case asks for. Standard library only."""

from __future__ import annotations

from ..targets import REGISTRY, Target

SLOT = "harness-slot"  # one per node: a node measures one case at a time
PREFIX = "harness-target:"
NODE_PREFIX = "harness-node:"  # a zero-use resource carrying the node's harness name


VERSION_PREFIX = "harness-version:"  # the harness a node runs: cases travel pickled, so it must match


def version_resource(version: str) -> str:
    return VERSION_PREFIX + version


def version_of(resources: dict[str, float]) -> str | None:
    return next((key[len(VERSION_PREFIX):] for key in resources if key.startswith(VERSION_PREFIX)), None)


def node_resource(name: str) -> str:
    return NODE_PREFIX + name


def name_of(resources: dict[str, float]) -> str | None:
    return next((key[len(NODE_PREFIX):] for key in resources if key.startswith(NODE_PREFIX)), None)


def target_resource(alias: str) -> str:
    return PREFIX + alias


def alias_of(target: Target) -> str:
    """The registry alias a suite's target runs as (the unit nodes advertise): a target named
    ov-bf16 with provider OpenVINO on device CPU needs what a node offering 'openvino' has."""
    device = str(target.options.get("device_type", "")).upper()
    matching = [alias for alias, info in REGISTRY.items()
                if info.provider == target.provider and bool(info.plugin) == bool(target.plugin)
                and str(info.options.get("device_type", "")).upper() == device]
    if target.name in matching:
        return target.name
    return matching[0] if matching else target.provider  # no alias: offered only by name (--targets)


def offered(resources: dict[str, float]) -> list[str]:
    """The targets a node's resources offer, by alias."""
    return sorted(key[len(PREFIX):] for key in resources if key.startswith(PREFIX))
