"""Compare settings: built-in defaults < config file (YAML/TOML) < flags < per-case rules."""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import InputError
from .metrics import DEFAULT_MIN_EFFECT, METRICS

MetricName = Literal["latency_p50", "latency_p90", "latency_p99", "throughput", "peak_memory",
                     "accuracy_cosine", "accuracy_top1"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MinEffects(_Strict):
    latency_p50: float | None = Field(None, ge=0)
    latency_p90: float | None = Field(None, ge=0)
    latency_p99: float | None = Field(None, ge=0)
    throughput: float | None = Field(None, ge=0)
    peak_memory: float | None = Field(None, ge=0)
    accuracy_cosine: float | None = Field(None, ge=0)
    accuracy_top1: float | None = Field(None, ge=0)

    def given(self) -> dict[str, float]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class CaseRule(_Strict):
    match: str = Field(description="fnmatch glob on the case id, e.g. 'resnet50/*/cuda/*'")
    min_effect: MinEffects = Field(default_factory=MinEffects)
    ignore: list[MetricName] = Field(default_factory=list)


class HistoryConfig(_Strict):
    last: int = Field(5, ge=1)
    mad_k: float = Field(3.0, ge=0, description="candidate must also be beyond median + k * MAD of the history")
    min_runs: int = Field(3, ge=1, description="fewer history runs than this: inconclusive")


class CompareConfig(_Strict):
    alpha: float = Field(0.05, gt=0, lt=1)
    min_effect: MinEffects = Field(default_factory=MinEffects)
    cases: list[CaseRule] = Field(default_factory=list)
    history: HistoryConfig = Field(default_factory=HistoryConfig)


@dataclass(frozen=True)
class Settings:
    """Everything that decides a verdict; built once per comparison (no global state)."""

    alpha: float = 0.05
    min_effect: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MIN_EFFECT))
    rules: tuple[CaseRule, ...] = ()
    history: HistoryConfig = field(default_factory=HistoryConfig)

    def threshold(self, case_id: str, metric: str) -> float:
        value = self.min_effect[metric]
        for rule in self.rules:  # later rules win
            if fnmatch.fnmatchcase(case_id, rule.match):
                value = rule.min_effect.given().get(metric, value)
        return value

    def ignored(self, case_id: str, metric: str) -> bool:
        return any(metric in rule.ignore and fnmatch.fnmatchcase(case_id, rule.match) for rule in self.rules)


def load_config(path: Path | None) -> CompareConfig:
    """YAML or TOML (by suffix); unknown keys are errors so a typo never silently loosens a gate."""
    if path is None:
        return CompareConfig()
    try:
        text = Path(path).read_text(encoding="utf-8")
        data = tomllib.loads(text) if Path(path).suffix == ".toml" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"{path}: cannot read compare config: {' '.join(str(exc).split())}") from None
    try:
        return CompareConfig.model_validate(data or {})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "(top level)"
        raise InputError(f"{path}: {where}: {first['msg']}") from None


def make_settings(config: CompareConfig, alpha: float | None = None, min_effect: float | None = None,
                  last: int | None = None) -> Settings:
    """Built-in defaults < config file < command-line flags < the config's per-case rules."""
    effects = {**DEFAULT_MIN_EFFECT, **config.min_effect.given()}
    if min_effect is not None:
        effects.update({m.name: min_effect for m in METRICS if m.relative})
    history = config.history if last is None else config.history.model_copy(update={"last": last})
    return Settings(alpha=config.alpha if alpha is None else alpha, min_effect=effects, rules=tuple(config.cases),
                    history=history)
