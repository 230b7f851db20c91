"""Configs: defaults < YAML < --set KEY=VALUE overrides, nested sections, clear errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pluralign.config import ConfigError, apply_overrides, config_help, load_config
from pluralign.demo_config import DemoConfig, apply_size
from pluralign.training.plus_config import PlusConfig
from pluralign.training.rm_config import RMConfig

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class _Inner:
    lr: float = 1e-3
    steps: int = 5


@dataclass
class _Cfg:
    lr: float = field(default=1e-3, metadata={"help": "learning rate"})
    steps: int = 10
    bf16: bool = False
    name: str | None = None
    methods: list[str] = field(default_factory=lambda: ["bt"])
    inner: _Inner = field(default_factory=lambda: _Inner(steps=7), metadata={"help": "a section"})


def test_defaults_yaml_and_overrides(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("lr: 0.5\nsteps: 20\nmethods: [bt, icl]\n")
    cfg = load_config(_Cfg, y, ["steps=30", "bf16=true", "name=run1"])
    assert (cfg.lr, cfg.steps, cfg.bf16, cfg.name, cfg.methods) == (0.5, 30, True, "run1", ["bt", "icl"])
    assert load_config(_Cfg).steps == 10
    assert load_config(_Cfg, overrides=["methods=bt,oracle"]).methods == ["bt", "oracle"]
    assert load_config(_Cfg, overrides=["methods=[bt, icl]"]).methods == ["bt", "icl"]
    assert load_config(_Cfg, overrides=["name=2024"]).name == "2024"  # a str field keeps the text
    assert load_config(_Cfg, overrides=["name=null"]).name is None
    assert load_config(_Cfg, overrides=["lr=1e-4"]).lr == 1e-4  # YAML 1.1 reads 1e-4 as text: still a float
    assert "learning rate" in config_help(_Cfg)


def test_nested_sections_from_yaml_and_dotted_overrides(tmp_path):
    y = tmp_path / "c.yaml"
    y.write_text("inner:\n  lr: 0.25\n")
    cfg = load_config(_Cfg, y, ["inner.steps=3"])
    assert (cfg.inner.lr, cfg.inner.steps) == (0.25, 3)
    # A section not mentioned keeps its field's default (steps=7 here, not _Inner's 5).
    assert load_config(_Cfg, y).inner.steps == 7
    assert load_config(_Cfg, overrides=["inner.lr=0.5"]).inner == _Inner(lr=0.5, steps=7)
    y.write_text("inner: {}\n")
    assert load_config(_Cfg, y).inner == _Inner(steps=7)
    help_text = config_help(_Cfg)
    assert "inner.steps=7" in help_text and "inner.*  a section" in help_text


def test_plus_config_nests_the_rm_config(tmp_path):
    cfg = load_config(PlusConfig, ROOT / "configs/plus-cpu.yaml", ["rm.lr=1e-4", "rm.batch_size=8", "epochs=2"])
    assert isinstance(cfg.rm, RMConfig)
    assert (cfg.rm.lr, cfg.rm.batch_size, cfg.rm.max_length, cfg.epochs) == (1e-4, 8, 256, 2)
    gpu = load_config(PlusConfig, ROOT / "configs/plus-qwen2.5-3b-gpu.yaml")
    assert (gpu.rm.backbone, gpu.rm.max_length, gpu.rm.head_lr) == ("Qwen/Qwen2.5-0.5B-Instruct", 1024, 9e-5)
    assert PlusConfig().rm == RMConfig()
    assert load_config(PlusConfig, ROOT / "configs/plus-extractive-cpu.yaml").backend == "cpu"
    again = apply_overrides(cfg, ["rm.lora_r=8"])
    assert (again.rm.lora_r, again.rm.lr, cfg.rm.lora_r) == (8, 1e-4, 0)  # a copy; the original is unchanged


def test_demo_config_rm_section_and_size_presets():
    assert load_config(DemoConfig, ROOT / "configs/demo-cpu.yaml") == DemoConfig()
    small = apply_size(DemoConfig())
    assert (small.rm.max_length, small.rm.max_steps, small.rm.batch_size, small.rm.lr) == (160, 30, 8, 1e-4)
    assert apply_size(DemoConfig(size="tiny")).rm.max_steps == 8
    full = apply_size(DemoConfig(size="full"))
    assert (full.rm.max_length, full.rm.max_steps, full.rm.batch_size, full.rm.lr) == (256, 300, 16, 5e-5)
    # A value set to something other than the default wins over the preset.
    mine = apply_size(load_config(DemoConfig, overrides=["size=full", "rm.max_steps=50"]))
    assert (mine.rm.max_steps, mine.rm.batch_size) == (50, 16)
    gpu = apply_size(load_config(DemoConfig, ROOT / "configs/demo-paper-gpu.yaml"))
    assert (gpu.rm.backbone, gpu.rm.max_length, gpu.rm.max_steps, gpu.rm.batch_size, gpu.rm.lr) == (
        "Qwen/Qwen2.5-0.5B-Instruct", 1024, 2000, 16, 9e-6)


@pytest.mark.parametrize(
    "yaml_text, overrides, match",
    [
        ("lrr: 1\n", [], r"c\.yaml: unknown key 'lrr' for _Cfg; did you mean 'lr'"),
        ("steps: ten\n", [], r"c\.yaml: key 'steps' expects int, got 'ten'"),
        ("steps: 1.5\n", [], "key 'steps' expects int, got 1.5"),
        ("bf16: 1.0\n", [], "key 'bf16' expects bool"),
        ("lr: true\n", [], "key 'lr' expects float, got True"),
        ("methods: bt\n", [], r"key 'methods' expects list\[str\]"),
        ("steps:\n", [], "key 'steps' expects int, got null"),
        ("- a\n- b\n", [], "expected a mapping"),
        ("inner: 3\n", [], r"'inner' is a section of _Inner: set its keys, e.g. 'inner: \{lr: ...\}'"),
        ("inner:\n  lr: fast\n", [], r"c\.yaml: key 'inner\.lr' expects float, got 'fast'"),
        ("inner:\n  stepz: 1\n", [], r"unknown key 'inner\.stepz' for _Cfg; did you mean 'inner\.steps'"),
        ("", ["steps"], "expected KEY=VALUE"),
        ("", ["--steps=3"], "without dashes"),
        ("", ["nope=1"], r"--set nope=1: unknown key 'nope'"),
        ("", ["bf16=maybe"], r"--set bf16=maybe: key 'bf16' expects bool, got 'maybe'"),
        ("", ["inner.lr=abc"], r"--set inner\.lr=abc: key 'inner\.lr' expects float"),
        ("", ["inner=1"], "is a section"),
        ("", ["steps.x=1"], "key 'steps' is a single int, not a section"),
        # The old flat spelling of a section's key points at the nested one.
        ("inner_lr: 0.1\n", [], r"unknown key 'inner_lr' for _Cfg; did you mean 'inner\.lr'\? .*'inner: \{lr: ...\}'"),
        ("", ["inner_steps=2"], r"did you mean 'inner\.steps'\? .*--set inner\.steps="),
    ],
)
def test_bad_configs_fail_clearly(tmp_path, yaml_text, overrides, match):
    y = tmp_path / "c.yaml"
    y.write_text(yaml_text)
    with pytest.raises(ConfigError, match=match):
        load_config(_Cfg, y, overrides)


@pytest.mark.parametrize("old_key, new_key", [("rm_lr", "rm.lr"), ("rm_backbone", "rm.backbone"),
                                              ("rm_max_length", "rm.max_length"), ("rm_batch_size", "rm.batch_size"),
                                              ("rm_head_lr", "rm.head_lr"), ("rm_lora_r", "rm.lora_r"),
                                              ("rm_bf16", "rm.bf16")])
def test_flat_plus_yaml_of_the_old_form_names_the_nested_key(tmp_path, old_key, new_key):
    y = tmp_path / "old.yaml"
    y.write_text(f"epochs: 2\n{old_key}: 1\n")
    with pytest.raises(ConfigError, match=rf"old\.yaml: unknown key '{old_key}' for PlusConfig; did you mean "
                                          rf"'{new_key}'"):
        load_config(PlusConfig, y)


def test_flat_demo_yaml_of_the_old_form_names_the_nested_key(tmp_path):
    y = tmp_path / "demo.yaml"
    y.write_text("size: full\nrm_max_steps: 2000\n")
    with pytest.raises(ConfigError, match=r"unknown key 'rm_max_steps' for DemoConfig; did you mean 'rm\.max_steps'"):
        load_config(DemoConfig, y)


def test_section_checks_run_and_name_the_source(tmp_path):
    with pytest.raises(ConfigError, match=r"--set rm\.max_length=4: RMConfig: max_length must be > 8"):
        load_config(PlusConfig, overrides=["rm.max_length=4"])
    with pytest.raises(ConfigError, match="PlusConfig: algo must be"):
        load_config(PlusConfig, overrides=["algo=sgd"])


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(_Cfg, tmp_path / "missing.yaml")


def test_apply_overrides_types_and_checks_fields():
    cfg = apply_overrides(PlusConfig(), ["epochs=2", "rm_passes=0.5", "train_rm=false", "rm.lr=2e-4"])
    assert (cfg.epochs, cfg.rm_passes, cfg.train_rm, cfg.rm.lr) == (2, 0.5, False, 2e-4)
    with pytest.raises(ConfigError, match="unknown key 'epoch'"):
        apply_overrides(PlusConfig(), ["epoch=2"])
    with pytest.raises(ConfigError, match=r"--set plus\.epoch=2: unknown key 'epoch'"):
        apply_overrides(PlusConfig(), ["epoch=2"], prefix="plus.")
