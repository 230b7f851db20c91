"""Opening reward-model directories with errors that name the bad file, and the earlier on-disk format.

A directory is the library's format (``config.json`` of model type ``pluralign_summary_rm``, ``model.safetensors``,
tokenizer files); every weight must come from the file (missing or unexpected keys are an error, never a random
initialisation). Directories written before the model became a ``PreTrainedModel`` (``pluralign_rm.json``,
``head.safetensors`` and the backbone's own files or a LoRA adapter) are read by :func:`load_legacy`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

LEGACY_CONFIG = "pluralign_rm.json"
LEGACY_HEAD = "head.safetensors"
LEGACY_BASE_DIR = "base"  # the frozen base weights of a legacy LoRA model saved from memory
LEGACY_VERSION = 1
MODEL_TYPE = "pluralign_summary_rm"  # SummaryConditionedRMConfig.model_type


class RMCheckpointError(ValueError):
    """A reward-model directory is missing a file or holds a corrupt one (the message names which)."""


def is_encoder_config(config) -> bool:
    """True for BERT-style encoders (text pairs, mean pooling), False for decoder LMs."""
    # transformers loads inside the functions here: the CLI imports this module (is_reward_model_dir) at start-up
    from transformers.models.auto.modeling_auto import MODEL_FOR_MASKED_LM_MAPPING_NAMES

    return config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES and not getattr(config, "is_decoder", False)


def is_reward_model_dir(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` holds a summary-conditioned reward model (current or earlier format)."""
    d = Path(directory)
    if (d / LEGACY_CONFIG).exists():
        return True
    try:
        return json.loads((d / "config.json").read_text(encoding="utf-8")).get("model_type") == MODEL_TYPE
    except (OSError, ValueError, AttributeError):
        return False


def _tokenizer(d: Path):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(d)
    except Exception as e:  # noqa: BLE001 - tokenizers raise many unrelated types on bad files
        raise RMCheckpointError(f"{d}: cannot load the tokenizer (tokenizer.json / tokenizer_config.json): "
                                f"{e}") from None


def _read_json(path: Path) -> dict:
    if not path.exists():
        raise RMCheckpointError(f"{path}: missing (not a pluralign reward-model checkpoint)")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise RMCheckpointError(f"{path}: corrupt JSON ({e})") from None
    if not isinstance(obj, dict):
        raise RMCheckpointError(f"{path}: expected a JSON object")
    return obj


def load(cls, directory: str | os.PathLike, *args, **kwargs):
    """``cls.from_pretrained`` (the library's) on a checked directory, tokenizer attached."""
    from transformers import PreTrainedModel

    d = Path(directory)
    if not d.is_dir():
        raise RMCheckpointError(f"{d}: reward-model checkpoint directory does not exist")
    if (d / LEGACY_CONFIG).exists():
        return load_legacy(cls, d)
    meta = _read_json(d / "config.json")
    if meta.get("model_type") != cls.config_class.model_type:
        raise RMCheckpointError(f"{d / 'config.json'}: model_type {meta.get('model_type')!r} is not "
                                f"{cls.config_class.model_type!r} (not a pluralign reward model)")
    for key in ("backbone_config", "pooling", "max_input_length", "template"):
        if key not in meta:
            raise RMCheckpointError(f"{d / 'config.json'}: field '{key}' is missing")
    if not any(d.glob("model*.safetensors")):
        raise RMCheckpointError(f"{d / 'model.safetensors'}: missing (the model weights)")
    tokenizer = _tokenizer(d)
    try:
        model, info = PreTrainedModel.from_pretrained.__func__(cls, d, *args, output_loading_info=True, **kwargs)
    except RMCheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - HF raises OSError/ValueError/SafetensorError/... on bad weights
        raise RMCheckpointError(f"{d}: cannot load the model weights: {e}") from None
    bad = {k: v for k, v in info.items() if k in ("missing_keys", "unexpected_keys", "mismatched_keys") and v}
    if bad:
        raise RMCheckpointError(f"{d / 'model.safetensors'}: does not match the model: "
                                + "; ".join(f"{k} {sorted(v)[:4]}" for k, v in bad.items()))
    model.set_tokenizer(tokenizer)
    model.freeze_untrained()
    model.eval()
    return model


def load_legacy(cls, d: Path):
    """A directory of the earlier format: the backbone's files (or a LoRA adapter), ``head.safetensors`` and
    ``pluralign_rm.json``. Rebuilt as the current model; ``save_pretrained`` then writes the current format."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from transformers import AutoModel

    meta_path = d / LEGACY_CONFIG
    meta = _read_json(meta_path)
    for key in ("version", "pooling", "max_length", "template", "hidden_size"):
        if key not in meta:
            raise RMCheckpointError(f"{meta_path}: field '{key}' is missing")
    if meta["version"] > LEGACY_VERSION:
        raise RMCheckpointError(f"{meta_path}: format version {meta['version']} is newer than this pluralign "
                                f"({LEGACY_VERSION})")
    head_path = d / LEGACY_HEAD
    if not head_path.exists():
        raise RMCheckpointError(f"{head_path}: missing (the reward head weights)")
    try:
        head_state = load_file(str(head_path))
    except (SafetensorError, OSError, ValueError) as e:
        raise RMCheckpointError(f"{head_path}: corrupt safetensors file ({e})") from None
    if set(head_state) != {"weight", "bias"} or tuple(head_state["weight"].shape) != (1, meta["hidden_size"]):
        raise RMCheckpointError(f"{head_path}: expected weight (1, {meta['hidden_size']}) and bias, got "
                                f"{ {k: tuple(v.shape) for k, v in head_state.items()} }")
    lora = meta.get("lora")
    for name in (["adapter_config.json", "adapter_model.safetensors"] if lora else ["config.json"]):
        if not (d / name).exists():
            raise RMCheckpointError(f"{d / name}: missing (backbone {'adapter' if lora else 'config'})")
    if not lora and not any(d.glob("model*.safetensors")) and not any(d.glob("pytorch_model*.bin")):
        raise RMCheckpointError(f"{d / 'model.safetensors'}: missing (backbone weights)")
    tokenizer = _tokenizer(d)
    try:
        if lora:
            from peft import PeftModel

            from pluralign.models.backbone import resolve_backbone

            if (d / LEGACY_BASE_DIR).exists():
                base_src = str(d / LEGACY_BASE_DIR)
            elif meta.get("base_model"):
                base_src = resolve_backbone(meta["base_model"])
            else:
                raise RMCheckpointError(f"{d / LEGACY_BASE_DIR}: missing, and {meta_path} names no base model for "
                                        "the LoRA adapter")
            base = AutoModel.from_pretrained(base_src)
            backbone = PeftModel.from_pretrained(base, d, is_trainable=True)
        else:
            base = backbone = AutoModel.from_pretrained(d)
    except RMCheckpointError:
        raise
    except Exception as e:  # noqa: BLE001 - HF raises OSError/ValueError/SafetensorError/... on bad weights
        raise RMCheckpointError(f"{d}: cannot load the backbone weights: {e}") from None
    config = cls.config_class(
        backbone_config=base.config, backbone_name=meta.get("backbone"), pooling=meta["pooling"],
        max_input_length=meta["max_length"], template=meta["template"], is_encoder=is_encoder_config(base.config),
        lora=lora)
    model = cls(config, backbone=backbone, tokenizer=tokenizer)
    model.head.load_state_dict(head_state)
    model.eval()
    return model
