"""The decider registry: plain names unchanged, ``name(key=value)`` specs over config presets."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from rapid_env.agents.bandwidth_adaptive import BandwidthAdaptiveDecider
from rapid_env.agents.chunk_threshold import ChunkThresholdDecider
from rapid_env.agents.fixed_split import FixedSplitConfig, FixedSplitDecider
from rapid_env.agents.learned import SHIPPED_DECIDER, LearnedDecider
from rapid_env.agents.periodic import PeriodicDecider
from rapid_env.agents.rapid import VARIANTS, RapidConfig, RapidDecider
from rapid_env.agents.registry import DECIDERS
from rapid_env.agents.static_split import StaticSplitConfig, StaticSplitDecider
from rapid_env.agents.vision_entropy import VisionEntropyDecider
from rapid_env.registry import UnknownNameError
from rapid_env.specs import SpecError, describe_fields, field_types, format_value, type_label

DOCS = Path(__file__).resolve().parents[2] / "docs" / "deciders.md"
NAMES = [
    "rapid", "rapid-acc-only", "rapid-torque-only", "rapid-fixed-weights",
    "rapid-single-threshold", "rapid-no-preempt", "rapid-no-cooldown", "rapid-settle",
    "rapid-link-aware", "edge-only", "cloud-only", "learned", "static-split", "chunk-threshold",
    "periodic", "vision-entropy", "bandwidth-adaptive",
]
TYPES = {
    "edge-only": FixedSplitDecider, "cloud-only": FixedSplitDecider, "learned": LearnedDecider,
    "static-split": StaticSplitDecider, "chunk-threshold": ChunkThresholdDecider,
    "periodic": PeriodicDecider, "vision-entropy": VisionEntropyDecider,
    "bandwidth-adaptive": BandwidthAdaptiveDecider,
}


def test_names_are_unchanged():
    assert DECIDERS.names() == [*NAMES, "sb3:<...>"]
    assert list(VARIANTS) == NAMES[:9]


@pytest.mark.parametrize("name", NAMES)
def test_every_registered_name_still_creates_its_preset(name):
    d = DECIDERS.create(name)
    assert d.name == name
    assert isinstance(d, TYPES.get(name, RapidDecider))
    cls = DECIDERS.config_class(name)
    assert cls is not None and dataclasses.is_dataclass(cls)
    assert d.config == DECIDERS.config(name)
    if name in VARIANTS:
        assert d.config == VARIANTS[name]
    else:
        assert d.config == cls()
    d.reset(np.random.default_rng(0))
    # name() is name, but the decider is named by the text as given
    empty = DECIDERS.create(f"{name}()")
    assert empty.name == f"{name}()" and empty.config == d.config


def test_fixed_split_names_keep_their_side():
    edge, cloud = DECIDERS.create("edge-only"), DECIDERS.create("cloud-only")
    assert (edge.where, cloud.where) == ("edge", "cloud")
    assert FixedSplitDecider("edge").name == "edge-only"
    assert DECIDERS.create("cloud-only()").where == "cloud"


def test_a_spec_overrides_the_config_and_names_the_decider():
    d = DECIDERS.create("rapid(high_threshold=6)")
    assert isinstance(d, RapidDecider)
    assert d.name == "rapid(high_threshold=6)"
    assert d.config == RapidConfig(high_threshold=6.0)
    d = DECIDERS.create(" rapid( high_threshold = 6 , cooldown_s=0.1 ) ")
    assert d.config == RapidConfig(high_threshold=6.0, cooldown_s=0.1)
    assert d.name == " rapid( high_threshold = 6 , cooldown_s=0.1 ) "
    d = DECIDERS.create("rapid(refill_split=edge,trigger_split=cloud,preempt_max_latency_s=0.1)")
    assert d.config.refill_split == "edge" and d.config.trigger_split == "cloud"
    assert d.config.preempt_max_latency_s == 0.1


def test_an_ablation_spec_starts_from_the_ablation_preset():
    d = DECIDERS.create("rapid-acc-only(high_threshold=5)")
    assert d.name == "rapid-acc-only(high_threshold=5)"
    assert d.config == dataclasses.replace(VARIANTS["rapid-acc-only"], high_threshold=5.0)
    assert d.config.signals == "acceleration"
    d = DECIDERS.create("rapid-link-aware(preempt_max_latency_s=none)")
    assert d.config == RapidConfig()
    d = DECIDERS.create("rapid-no-cooldown(cooldown=true)")
    assert d.config == RapidConfig()


@pytest.mark.parametrize(
    ("spec", "field", "value"),
    [
        ("chunk-threshold(threshold=0.25)", "threshold", 0.25),
        ("chunk-threshold(split=none,max_in_flight=2)", "max_in_flight", 2),
        ("periodic(period_ticks=2)", "period_ticks", 2),
        ("vision-entropy(signal=image+policy,reference_bits=none)", "signal", "image+policy"),
        ("vision-entropy(threshold_bits=inf)", "threshold_bits", float("inf")),
        ("bandwidth-adaptive(hysteresis=0)", "hysteresis", 0.0),
        ("learned(safety_refill=false)", "safety_refill", False),
    ],
)
def test_every_baseline_takes_its_fields(spec, field, value):
    d = DECIDERS.create(spec)
    assert d.name == spec
    assert getattr(d.config, field) == value


def test_learned_safety_refill_override():
    assert DECIDERS.create("learned").safety_refill is True
    assert DECIDERS.create("learned(safety_refill=no)").safety_refill is False
    d = DECIDERS.create(f"sb3:{SHIPPED_DECIDER}")  # prefix forms are untouched
    assert isinstance(d, LearnedDecider) and d.name == f"sb3:{SHIPPED_DECIDER}"


def test_unknown_field_lists_the_allowed_fields():
    with pytest.raises(SpecError) as info:
        DECIDERS.check("rapid(nope=1)")
    msg = str(info.value)
    assert msg == f"rapid(nope=1): unknown field 'nope'; allowed: {describe_fields(RapidConfig)}"
    assert msg.startswith(
        "rapid(nope=1): unknown field 'nope'; allowed: high_threshold: float, "
        "low_threshold: float, cooldown_s: float, "
    )
    for name, cls in (("static-split", StaticSplitConfig), ("edge-only", FixedSplitConfig)):
        with pytest.raises(SpecError, match=r"unknown field 'x'; allowed: max_in_flight: int$"):
            DECIDERS.create(f"{name}(x=1)")
        assert describe_fields(cls) == "max_in_flight: int"


def test_bad_values_name_the_value_and_the_allowed_fields():
    with pytest.raises(SpecError) as info:
        DECIDERS.check("rapid(high_threshold=abc)")
    assert str(info.value) == (
        "rapid(high_threshold=abc): high_threshold='abc' is not a float; "
        f"allowed: {describe_fields(RapidConfig)}"
    )
    for spec, needle in [
        ("rapid(high_threshold=-1)", "rapid(high_threshold=-1): need 0 < low_threshold"),
        ("rapid(high_threshold=inf)", "thresholds must be finite"),
        ("rapid(history_s=inf)", "history_s must be finite"),
        ("rapid(speed_ref=nan)", "speed_ref must be finite"),
        ("rapid(signals=vision)", "signals='vision' is not one of both|acceleration|torque"),
        ("rapid(refill_split=-1)", "refill_split=-1; allowed: None, 'edge', 'cloud'"),
        ("chunk-threshold(threshold=1.5)", "threshold must be in [0, 1]"),
        ("periodic(period_ticks=0.5)", "period_ticks='0.5' is not an int or none"),
        ("vision-entropy(cooldown_s=nan)", "cooldown_s must be >= 0"),
        ("learned(safety_refill=maybe)", "safety_refill='maybe' is not a bool or none"),
    ]:
        with pytest.raises(SpecError) as info:
            DECIDERS.check(spec)
        assert needle in str(info.value) and "\n" not in str(info.value), spec


def test_unknown_names_and_malformed_specs():
    with pytest.raises(UnknownNameError, match=r"unknown agent 'rapdi'; allowed: rapid, "):
        DECIDERS.check("rapdi(high_threshold=6)")
    with pytest.raises(UnknownNameError, match=r"unknown agent 'oracle'"):
        DECIDERS.create("oracle")
    with pytest.raises(SpecError, match=r"bad spec 'rapid\(high_threshold=6': .*missing '\)'"):
        DECIDERS.check("rapid(high_threshold=6")
    assert "rapid(high_threshold=6)" in DECIDERS and "rapid(nope=1)" not in DECIDERS


def test_docs_list_every_field_with_its_type_and_default():
    text = DOCS.read_text(encoding="utf-8")
    for name in NAMES:
        assert f"`{name}`" in text
        cls = DECIDERS.config_class(name)
        assert cls is not None and f"(`{cls.__name__}`)" in text
        default = cls()
        for field, tp in field_types(cls).items():
            t = type_label(tp).replace("|", "\\|")
            row = f"| `{field}` | `{t}` | `{format_value(getattr(default, field))}` |"
            assert row in text, row
    for name, cfg in VARIANTS.items():
        changed = [
            f"{f.name}={format_value(getattr(cfg, f.name))}"
            for f in dataclasses.fields(cfg)
            if getattr(cfg, f.name) != getattr(RapidConfig(), f.name)
        ]
        assert f"| `{name}` | " + (f"`{', '.join(changed)}`" if changed else "") in text
