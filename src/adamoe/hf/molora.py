"""Mo-LoRA: a router, E LoRA experts and m null experts on the linears of a dense Llama-family model.

AdaMoE's dense setting (Llama2-7B in the paper): each targeted projection keeps its frozen base weight
and adds a routed mixture of rank-r LoRA updates. With m null experts and top-k over E+m, a token that
picks nulls uses fewer LoRA experts, and a token whose picks are all null gets no update at all, so
the adapter cost follows the routing (the paper's Load, m{m}k{k} configurations).

Routing is :class:`~adamoe.routing.topk.TopKRouter`, the same code as the MoE layers, and every
:class:`MoLoRALinear` publishes ``last_routing`` / ``routing_callbacks`` so the aux losses
(:func:`adamoe.stats.collect_routings`) and :class:`adamoe.stats.RoutingRecorder` work unchanged.
The module itself lives in :mod:`adamoe.hf.molora_linear`: ``compute="sparse"`` drops null slots with
:func:`adamoe.dispatch.plan` before any LoRA GEMM, ``"dense"`` runs the E small experts as one gated
rank-E*r LoRA (faster at small E*r, same result), ``"auto"`` (default) picks by E*r. LoRA ``B`` starts
at zero, so the injected model equals the base model exactly at init.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from adamoe.hf.molora_linear import COMPUTE_MODES, MoLoRALinear
from adamoe.routing.base import NORMALIZE_MODES
from adamoe.utils.config import Config, option, require
from adamoe.utils.io import atomic_save_json, atomic_write_bytes

__all__ = [
    "ADAPTER_CONFIG_FILE",
    "ADAPTER_WEIGHTS_FILE",
    "COMPUTE_MODES",
    "DEFAULT_TARGETS",
    "SUPPORTED_ARCHITECTURES",
    "MoLoRAConfig",
    "MoLoRALinear",
    "count_parameters",
    "format_parameter_counts",
    "inject_molora",
    "load_molora",
    "molora_modules",
    "molora_parameters",
    "save_molora",
]

SUPPORTED_ARCHITECTURES: tuple[str, ...] = ("LlamaForCausalLM", "Qwen2ForCausalLM", "MistralForCausalLM")
DEFAULT_TARGETS: tuple[str, ...] = (
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
)
ADAPTER_WEIGHTS_FILE = "molora_adapter.safetensors"
ADAPTER_CONFIG_FILE = "molora_config.json"
FORMAT_NAME = "adamoe-molora"
FORMAT_VERSION = 1


@dataclass(kw_only=True)
class MoLoRAConfig(Config):
    """Injection settings; saved next to the adapter weights so loading rebuilds the same modules."""

    targets: tuple[str, ...] = DEFAULT_TARGETS
    num_experts: int = option(4, ge=1)
    num_null: int = option(0, ge=0)
    top_k: int = option(2, ge=1)
    rank: int = option(8, ge=1)
    alpha: float = option(16.0, gt=0)
    dropout: float = option(0.0, ge=0, lt=1)
    null_type: str = "zero"
    normalize: int = option(2, choices=NORMALIZE_MODES)
    seed: int = 0
    compute: str = option("auto", choices=COMPUTE_MODES)

    def __post_init__(self) -> None:
        if isinstance(self.targets, list):
            self.targets = tuple(self.targets)

    def check(self) -> None:
        require(
            len(self.targets) > 0 and all(self.targets),
            f"targets: expected a non-empty tuple of module names, got {self.targets!r}",
        )
        require(
            len(set(self.targets)) == len(self.targets),
            f"targets: expected unique module names, got {self.targets!r}",
        )
        total = self.num_experts + self.num_null
        require(self.top_k <= total, f"top_k: expected 1..{total} (num_experts + num_null), got {self.top_k}")
        # An identity null would add the projection's *input* to its output (and in != out for most
        # targets): the only meaningful null for a LoRA mixture is "no update".
        require(
            self.null_type == "zero",
            f"null_type: Mo-LoRA null experts mean 'no LoRA update', expected 'zero', got {self.null_type!r}",
        )

    @property
    def name(self) -> str:
        """The paper's configuration label, e.g. ``m7k4``."""
        return f"m{self.num_null}k{self.top_k}"

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["targets"] = list(self.targets)
        return out


def inject_molora(
    model: nn.Module,
    *,
    targets: tuple[str, ...] = DEFAULT_TARGETS,
    num_experts: int = 4,
    num_null: int = 0,
    top_k: int = 2,
    rank: int = 8,
    alpha: float = 16.0,
    dropout: float = 0.0,
    null_type: str = "zero",
    normalize: int = 2,
    seed: int = 0,
    compute: str = "auto",
) -> nn.Module:
    """Replace every ``nn.Linear`` named in ``targets`` by a :class:`MoLoRALinear`, in place.

    Freezes the whole base model; only routers and LoRA A/B are trainable. Adapter init is seeded by
    ``seed`` without touching the global RNG. ``compute``: "auto", "dense" or "sparse"
    (:func:`adamoe.hf.molora_linear.resolve_compute`). Returns ``model`` (settings in ``model.molora_config``).
    """
    arch = type(model).__name__
    require(
        arch in SUPPORTED_ARCHITECTURES,
        f"model: Mo-LoRA supports {', '.join(SUPPORTED_ARCHITECTURES)}, got {arch}",
    )
    require(not molora_modules(model), "model: already has Mo-LoRA adapters; pass a fresh base model")
    config = MoLoRAConfig(
        targets=targets,
        num_experts=num_experts,
        num_null=num_null,
        top_k=top_k,
        rank=rank,
        alpha=alpha,
        dropout=dropout,
        null_type=null_type,
        normalize=normalize,
        seed=seed,
        compute=compute,
    ).validate()

    names = _target_linears(model, config.targets)  # checked before the model is touched
    model.requires_grad_(False)
    _wrap_linears(model, names, config)
    model.molora_config = config
    return model


def _wrap_linears(model: nn.Module, names: list[str], config: MoLoRAConfig) -> None:
    """Replace each named ``nn.Linear`` by a :class:`MoLoRALinear` built from ``config``, in place.

    The adapters are initialised from a CPU stream seeded with ``config.seed`` inside ``fork_rng``, in
    ``names`` order: the same seed gives the same adapters and the caller's global RNG is untouched. Each
    new module takes the model's train/eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        for name in names:
            parent_name, _, leaf = name.rpartition(".")
            parent = model.get_submodule(parent_name)
            wrapped = MoLoRALinear(
                base=getattr(parent, leaf),
                num_experts=config.num_experts,
                top_k=config.top_k,
                num_null=config.num_null,
                rank=config.rank,
                alpha=config.alpha,
                dropout=config.dropout,
                null_type=config.null_type,
                normalize=config.normalize,
                compute=config.compute,
            )
            wrapped.train(model.training)
            setattr(parent, leaf, wrapped)


def _target_linears(model: nn.Module, targets: tuple[str, ...]) -> list[str]:
    """Sorted names of the ``nn.Linear`` modules whose last name part is in ``targets``; every target
    must match at least one linear and nothing else."""
    found: dict[str, list[str]] = {t: [] for t in targets}
    for name, module in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if leaf in found:
            require(
                isinstance(module, nn.Linear),
                f"targets: {name} is a {type(module).__name__}, expected nn.Linear",
            )
            found[leaf].append(name)
    missing = [t for t, names in found.items() if not names]
    if missing:
        raise ValueError(f"targets: no nn.Linear named {missing[0]!r} in {type(model).__name__}")
    return sorted(n for names in found.values() for n in names)


def molora_modules(model: nn.Module) -> dict[str, MoLoRALinear]:
    """Every injected :class:`MoLoRALinear`, by module name."""
    return {name: m for name, m in model.named_modules() if isinstance(m, MoLoRALinear)}


def molora_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """Adapter parameters (routers and LoRA A/B) by full name: what the optimizer and the file hold."""
    out: dict[str, nn.Parameter] = {}
    for prefix, module in molora_modules(model).items():
        for local, param in module.named_parameters():
            if not local.startswith("base."):
                out[f"{prefix}.{local}"] = param
    return out


def format_parameter_counts(trainable: int, total: int) -> str:
    """The PEFT-style line: trainable / all parameters and the trainable percentage."""
    pct = 100.0 * trainable / total if total else 0.0
    return f"trainable params: {trainable:,} || all params: {total:,} || trainable%: {pct:.4f}"


def count_parameters(model: nn.Module, *, verbose: bool = True) -> tuple[int, int]:
    """(trainable, total) parameter counts; prints the PEFT-style summary line when ``verbose``."""
    params = list(model.parameters())
    trainable = sum(p.numel() for p in params if p.requires_grad)
    total = sum(p.numel() for p in params)
    if verbose:
        print(format_parameter_counts(trainable, total))
    return trainable, total


def save_molora(model: nn.Module, path: str | Path) -> Path:
    """Write the adapter weights (safetensors) and injection settings (JSON) into directory ``path``."""
    config: MoLoRAConfig | None = getattr(model, "molora_config", None)
    params = molora_parameters(model)
    require(config is not None and bool(params), "model: has no Mo-LoRA adapters (call inject_molora first)")
    directory = Path(path)
    tensors = {name: p.detach().to("cpu").contiguous() for name, p in params.items()}
    atomic_write_bytes(directory / ADAPTER_WEIGHTS_FILE, save(tensors, metadata={"format": "pt"}))
    atomic_save_json(
        directory / ADAPTER_CONFIG_FILE,
        {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "architecture": type(model).__name__,
            "molora": config.to_dict(),
        },
    )
    return directory


def _read_config(file: Path) -> tuple[str, MoLoRAConfig]:
    require(file.is_file(), f"{file}: missing Mo-LoRA config file (expected {ADAPTER_CONFIG_FILE})")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{file}: expected JSON, got a parse error ({err})") from None
    require(
        isinstance(data, dict) and data.get("format") == FORMAT_NAME,
        f"{file}: expected a Mo-LoRA config with format {FORMAT_NAME!r}",
    )
    require(
        data.get("format_version") == FORMAT_VERSION,
        f"{file}: expected format_version {FORMAT_VERSION}, got {data.get('format_version')!r}",
    )
    require(isinstance(data.get("molora"), dict), f"{file}: expected a 'molora' settings object")
    return str(data.get("architecture")), MoLoRAConfig.from_mapping(data["molora"], where=str(file))


def _names(keys: list[str]) -> str:
    shown = ", ".join(keys[:3])
    return shown + (f" (+{len(keys) - 3} more)" if len(keys) > 3 else "")


def load_molora(model: nn.Module, path: str | Path) -> nn.Module:
    """Inject the saved settings into the fresh base ``model`` and load the adapters (strict keys)."""
    directory = Path(path)
    weights_file = directory / ADAPTER_WEIGHTS_FILE
    arch, config = _read_config(directory / ADAPTER_CONFIG_FILE)
    require(weights_file.is_file(), f"{weights_file}: missing Mo-LoRA adapter weights file")
    require(
        type(model).__name__ == arch,
        f"model: adapters in {directory} were saved for {arch}, got {type(model).__name__}",
    )
    try:
        tensors = load_file(weights_file)
    except (SafetensorError, OSError) as err:
        raise ValueError(f"{weights_file}: expected a safetensors file, got an error ({err})") from None

    inject_molora(model, **{f.name: getattr(config, f.name) for f in fields(config)})
    params = molora_parameters(model)
    missing = sorted(set(params) - set(tensors))
    unexpected = sorted(set(tensors) - set(params))
    require(
        not missing and not unexpected,
        f"{weights_file}: adapter keys do not match the model: missing [{_names(missing)}], "
        f"unexpected [{_names(unexpected)}]",
    )
    for name, param in params.items():
        require(
            tuple(tensors[name].shape) == tuple(param.shape),
            f"{weights_file}: {name} has shape {tuple(tensors[name].shape)}, expected {tuple(param.shape)}",
        )
    with torch.no_grad():
        for name, param in params.items():
            param.copy_(tensors[name])
    return model
