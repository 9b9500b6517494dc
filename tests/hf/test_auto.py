"""Converted checkpoints load correctly or fail loudly: adamoe_<family> Auto classes, trust_remote_code export.

The remote-code checks run vanilla transformers in a subprocess where adamoe cannot be imported, against
logits computed here by the converted model itself.
"""

from __future__ import annotations

import ast
import json

import pytest
import torch
from transformers import AutoConfig, AutoModelForCausalLM

from adamoe.hf import io
from adamoe.hf.convert import AdaMoERouter, convert, routers
from adamoe.hf.families import family_of_type, model_type_for
from adamoe.hf.io import REMOTE_CODE, REMOTE_FAMILIES, export_remote, load, save
from adamoe.hf.tiny import MOE_FAMILIES, tiny_model
from tests.hf.without_adamoe import run_without_adamoe

TOKENS = torch.tensor([[5, 17, 99, 3, 64, 23, 8, 41], [1, 2, 3, 4, 5, 6, 7, 8]])


def logits_of(model: torch.nn.Module) -> torch.Tensor:
    with torch.no_grad():
        return model(TOKENS).logits


def converted(family: str, overrides: dict | None = None, **kwargs) -> torch.nn.Module:
    """Tiny ``family`` model (config ``overrides``) with 4 random-init nulls, k = 3 unless ``kwargs`` say."""
    settings = {"null_experts": 4, "top_k": 3, "gate2_init": "random", "seed": 1, **kwargs}
    return convert(tiny_model(family, seed=2, **(overrides or {})), **settings)


def test_model_type_names():
    assert model_type_for("qwen2_moe") == "adamoe_qwen2_moe"
    assert family_of_type("adamoe_deepseek_v3") == "deepseek_v3"
    assert family_of_type("mixtral") is None and family_of_type("adamoe_llama") is None
    with pytest.raises(ValueError, match="family: expected one of"):
        model_type_for("llama")


@pytest.mark.parametrize("family", MOE_FAMILIES)
def test_auto_model_rebuilds_a_saved_checkpoint_converted(family, tmp_path):
    model = converted(family)
    save(model, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == f"adamoe_{family}"
    assert config["architectures"][0].startswith("AdaMoE")
    # auto_map is there for plain transformers; without trust_remote_code ours is the class (routers below)
    assert config["auto_map"]["AutoModelForCausalLM"] == f"modeling_adamoe.{config['architectures'][0]}"

    assert type(AutoConfig.from_pretrained(tmp_path)).model_type == f"adamoe_{family}"
    auto, info = AutoModelForCausalLM.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys"))
    assert type(auto).__name__ == config["architectures"][0]
    assert sum(isinstance(m, AdaMoERouter) for m in auto.modules()) == 2
    want = logits_of(model)
    assert torch.equal(logits_of(auto.eval()), want)
    assert torch.equal(logits_of(load(tmp_path)), want)


def test_a_reloaded_model_saves_and_loads_again(tmp_path):
    model = converted("mixtral")
    save(model, tmp_path / "a")
    again = load(tmp_path / "a")
    save(again, tmp_path / "b")
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["model_type"] == "adamoe_mixtral" and config["adamoe"] == model.config.adamoe
    assert torch.equal(logits_of(load(tmp_path / "b")), logits_of(model))
    export_remote(again, tmp_path / "c")
    assert torch.equal(logits_of(load(tmp_path / "c")), logits_of(model))


def test_older_folders_load_with_adamoe_only(tmp_path):
    """An older folder (the family's own model type + ``adamoe``) still loads converted via load()."""
    model = converted("qwen2_moe")
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == "adamoe_qwen2_moe"  # convert() adopts the distinct classes
    config["model_type"], config["architectures"] = "qwen2_moe", ["Qwen2MoeForCausalLM"]
    (tmp_path / "config.json").write_text(json.dumps(config))  # as saved before adoption existed
    loaded = load(tmp_path)
    assert loaded.config.model_type == "adamoe_qwen2_moe"
    assert torch.equal(logits_of(loaded), logits_of(model))


@pytest.mark.parametrize("family", REMOTE_FAMILIES)
def test_exported_folder_loads_with_adamoe_too(family, tmp_path):
    model = converted(family, normalize=0 if family == "qwen2_moe" else None)
    export_remote(model, tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["model_type"] == f"adamoe_{family}"
    assert config["auto_map"]["AutoModelForCausalLM"] == f"modeling_adamoe.{config['architectures'][0]}"
    assert {p.name for p in tmp_path.glob("*.py")} == {"configuration_adamoe.py", "modeling_adamoe.py"}
    want = logits_of(model)
    assert torch.equal(logits_of(load(tmp_path)), want)
    assert torch.equal(logits_of(AutoModelForCausalLM.from_pretrained(tmp_path).eval()), want)
    trusted = AutoModelForCausalLM.from_pretrained(tmp_path, trust_remote_code=True).eval()
    assert (logits_of(trusted) - want).abs().max() <= 1e-5


GROUPS = {"n_group": 2, "topk_group": 1}


@pytest.mark.parametrize(
    ("family", "settings", "overrides"),
    [
        ("mixtral", {"normalize": 1}, {}),
        ("qwen2_moe", {}, {}),  # norm_topk_prob=False: raw weights rescaled to the original top-k mass
        ("qwen2_moe", {"normalize": 2, "null_type": "identity"}, {}),
        ("qwen3_moe", {"null_experts": 0, "top_k": None}, {}),
        ("olmoe", {"null_type": "identity", "normalize": 1, "top_k": 4}, {}),
        ("deepseek_v2", {}, {"routed_scaling_factor": 2.5}),  # raw, rescaled, scaled, unsorted
        ("deepseek_v2", {"normalize": 2}, {**GROUPS, "topk_method": "group_limited_greedy"}),
        ("deepseek_v3", {}, GROUPS),  # sigmoid + selection bias, group-limited
        ("deepseek_v3", {"normalize": 0, "null_type": "identity"}, {"norm_topk_prob": False}),
    ],
)
def test_remote_classes_reproduce_the_adamoe_router(family, settings, overrides, tmp_path):
    """The standalone classes against adamoe's router + experts, in-process, over the routing options."""
    import importlib

    model = converted(family, overrides, **settings)
    generator = torch.Generator().manual_seed(7)
    for _, router in routers(model):  # selection biases that matter (DeepSeek-V3 only)
        for name in ("e_score_correction_bias", "null_score_correction_bias"):
            if isinstance(getattr(router, name, None), torch.Tensor):
                getattr(router, name).copy_(
                    0.3 * torch.randn(getattr(router, name).shape, generator=generator)
                )
    export_remote(model, tmp_path)
    module = importlib.import_module("adamoe.hf.remote.modeling_adamoe")
    cls = getattr(module, json.loads((tmp_path / "config.json").read_text())["architectures"][0])
    remote, info = cls.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    assert not any(isinstance(m, AdaMoERouter) for m in remote.modules())
    assert (logits_of(remote.eval()) - logits_of(model)).abs().max() <= 1e-5


def test_remote_code_imports_only_torch_and_transformers():
    for path in REMOTE_CODE.glob("*.py"):
        tree = ast.parse(path.read_text())
        roots = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        roots |= {
            n.module.split(".")[0]
            for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and n.level == 0 and n.module
        }
        assert roots <= {"__future__", "typing", "torch", "transformers"}, (path.name, roots)


def test_export_refuses_what_the_remote_code_cannot_reproduce(tmp_path, monkeypatch):
    monkeypatch.setattr(io, "REMOTE_FAMILIES", ("mixtral",))
    with pytest.raises(ValueError, match=r"export_remote supports mixtral, not olmoe; use adamoe\.hf\.save"):
        export_remote(converted("olmoe"), tmp_path)
    monkeypatch.undo()
    with pytest.raises(ValueError, match="not converted"):
        export_remote(tiny_model("mixtral"), tmp_path)
    model = converted("mixtral")
    for _, router in routers(model):
        router.null_bias = 0.5
    with pytest.raises(ValueError, match=r"null_bias is 0\.5"):
        export_remote(model, tmp_path)
    extra = converted("olmoe")
    extra.model.layers[1].mlp.extra = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match=r"weights model\.layers\.1\.mlp\.extra\.bias, .* differ"):
        export_remote(extra, tmp_path)
    assert not any(tmp_path.iterdir())


# Runs with adamoe made unimportable (tests/hf/without_adamoe.py).
VANILLA = """
import json
import torch
from transformers import AutoModelForCausalLM

def refused(folder, **kwargs):
    try:
        AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    except (ValueError, KeyError) as err:
        return type(err).__name__
    return None

def max_diff(folder, case):
    model = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=True).eval()
    with torch.no_grad():
        logits = model(torch.tensor(case["tokens"])).logits
    return type(model).__name__, (logits - torch.load(case["want"])).abs().max().item()

report = {}
for case in json.loads(sys.argv[1]):
    cls, diff = max_diff(case["remote"], case)
    saved_cls, saved_diff = max_diff(case["saved"], case)  # adamoe.hf.save: per-expert layout
    report[case["family"]] = {
        "saved_untrusted": refused(case["saved"]),
        "remote_untrusted": refused(case["remote"]),
        "class": cls,
        "max_diff": diff,
        "saved_class": saved_cls,
        "saved_max_diff": saved_diff,
    }
print("\\nREPORT " + json.dumps(report))
"""


VANILLA_FAMILIES = {"mixtral": {}, "qwen2_moe": {}, "deepseek_v3": GROUPS}


def test_vanilla_transformers_refuses_or_reproduces(tmp_path):
    cases = []
    for family, overrides in VANILLA_FAMILIES.items():
        model = converted(family, overrides)
        save(model, tmp_path / family / "saved")
        export_remote(model, tmp_path / family / "remote")
        torch.save(logits_of(model), tmp_path / family / "want.pt")
        paths = {k: str(tmp_path / family / k) for k in ("saved", "remote")}
        cases.append({"family": family, **paths, "want": str(tmp_path / family / "want.pt")})
    for case in cases:
        case["tokens"] = TOKENS.tolist()
    stdout = run_without_adamoe(VANILLA, json.dumps(cases), cwd=tmp_path)
    # (transformers may have written its trust_remote_code prompt to stdout)
    report = json.loads(stdout.split("\nREPORT ")[-1])
    for family in VANILLA_FAMILIES:
        got = report[family]
        assert got["saved_untrusted"] and got["remote_untrusted"], got  # custom code, not trusted: raises
        assert got["class"].startswith("AdaMoE") and got["saved_class"] == got["class"]
        assert got["max_diff"] <= 1e-5 and got["saved_max_diff"] <= 1e-5, got


def test_fused_moe_engines_are_told_to_refuse():
    """vLLM / SGLang's Transformers backends check ``is_backend_compatible()`` before swapping in their own
    fused-MoE kernels (which would ignore null experts)."""
    import importlib

    from adamoe.hf.auto import model_class

    remote = importlib.import_module("adamoe.hf.remote.modeling_adamoe")
    assert not model_class("mixtral").is_backend_compatible()
    assert not remote.AdaMoEQwen2MoeForCausalLM.is_backend_compatible()


def test_an_adopted_model_saves_the_distinct_type_with_plain_save_pretrained(tmp_path):
    from adamoe.hf.convert import adopt

    model = converted("qwen3_moe")
    want = logits_of(model)
    assert adopt(model) is model
    assert (
        model.config.model_type == "adamoe_qwen3_moe" and type(model).__name__ == "AdaMoEQwen3MoeForCausalLM"
    )
    assert torch.equal(logits_of(model), want)
    model.save_pretrained(tmp_path)
    assert json.loads((tmp_path / "config.json").read_text())["model_type"] == "adamoe_qwen3_moe"
    assert torch.equal(logits_of(AutoModelForCausalLM.from_pretrained(tmp_path).eval()), want)
    with pytest.raises(ValueError, match="not converted"):
        adopt(tiny_model("mixtral"))
