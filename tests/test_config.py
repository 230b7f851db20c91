"""Configs: defaults < YAML < key=value overrides, with clear errors."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from pluralign.config import ConfigError, config_help, load_config


@dataclass
class _Cfg:
    lr: float = field(default=1e-3, metadata={"help": "learning rate"})
    steps: int = 10
    bf16: bool = False
    name: str | None = None
    methods: list[str] = field(default_factory=lambda: ["bt"])


def test_defaults_yaml_and_overrides(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("lr: 0.5\nsteps: 20\nmethods: [bt, icl]\n")
    cfg = load_config(_Cfg, y, ["steps=30", "bf16=true", "--name=run1"])
    assert (cfg.lr, cfg.steps, cfg.bf16, cfg.name, cfg.methods) == (0.5, 30, True, "run1", ["bt", "icl"])
    assert load_config(_Cfg).steps == 10
    assert load_config(_Cfg, overrides=["methods=bt,oracle"]).methods == ["bt", "oracle"]
    assert "learning rate" in config_help(_Cfg)


@pytest.mark.parametrize(
    "yaml_text, overrides, match",
    [
        ("lrr: 1\n", [], "unknown field 'lrr'"),
        ("steps: ten\n", [], "field 'steps' expects int"),
        ("- a\n- b\n", [], "expected a mapping"),
        ("", ["steps"], "expected key=value"),
        ("", ["nope=1"], "unknown field 'nope'"),
        ("", ["bf16=maybe"], "field 'bf16' expects bool"),
    ],
)
def test_bad_configs_fail_clearly(tmp_path, yaml_text, overrides, match):
    y = tmp_path / "c.yaml"
    y.write_text(yaml_text)
    with pytest.raises(ConfigError, match=match):
        load_config(_Cfg, y, overrides)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(_Cfg, tmp_path / "missing.yaml")


def test_apply_overrides_types_and_checks_fields():
    from pluralign.config import ConfigError, apply_overrides
    from pluralign.training.plus_config import PlusConfig

    cfg = apply_overrides(PlusConfig(), ["epochs=2", "rm_passes=0.5", "train_rm=false"])
    assert (cfg.epochs, cfg.rm_passes, cfg.train_rm) == (2, 0.5, False)
    with pytest.raises(ConfigError, match="unknown field 'epoch'"):
        apply_overrides(PlusConfig(), ["epoch=2"])
