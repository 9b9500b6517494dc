"""``adamoe lm-eval`` runs lm-eval's own CLI; the trust_remote_code export gives plain ``lm_eval --model hf``
the same model: identical per-request log-likelihoods and accuracy on a local task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adamoe.cli import build_parser, main
from adamoe.commands.lm_eval import format_routing
from tests.hf.without_adamoe import run_without_adamoe

pytest.importorskip("lm_eval")

# lm-eval's entry point with adamoe made unimportable (tests/hf/without_adamoe.py).
PLAIN_LM_EVAL = """
from lm_eval.__main__ import cli_evaluate
sys.argv = ["lm_eval", *sys.argv[1:]]
cli_evaluate()
"""


def test_every_argument_goes_to_lm_eval():
    parser, _ = build_parser()
    argv = ["--model", "adamoe", "--seed", "1", "--config", "x.yaml", "-h"]
    assert parser.parse_args(["lm-eval", *argv]).lm_eval_args == argv


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_says_how_to_run_lm_eval_with_our_model_class(flag, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["lm-eval", flag])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    preface, _, rest = out.partition("lm-eval's own options follow.")
    assert "--model adamoe --model_args pretrained=" in preface
    assert "--tasks" in rest and "--model_args" in rest  # lm-eval's own help follows the preface
    parser, _ = build_parser()
    assert "--model adamoe" in " ".join(parser.format_help().split())  # `adamoe --help` says it too


def test_routing_table_lists_the_known_figures():
    table = format_routing({"tokens": 12, "load": 1.5, "expert_flops_pct": 75.0, "layers": {}})
    assert table.splitlines()[1] == "| tokens | load (true experts/token) | expert FLOPs % of top-k |"
    assert [cell.strip() for cell in table.splitlines()[3].split("|")[1:-1]] == ["12", "1.500", "75.0"]
    assert format_routing({}) == ""


def _checkpoints(tmp_path: Path) -> tuple[Path, Path, Path]:
    import adamoe.hf
    from adamoe.data import load_task
    from adamoe.eval.lm_eval_compare import write_lm_eval_tasks
    from adamoe.hf.models import byte_tokenizer
    from adamoe.hf.tiny import tiny_model

    tok = byte_tokenizer()
    ids = {
        "pad_token_id": tok.pad_token_id,
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
    }
    model = tiny_model("mixtral", seed=3, vocab_size=len(tok), max_position_embeddings=512, **ids)
    adamoe.hf.convert(model, null_experts=4, top_k=3, gate2_init="copy_jitter", seed=1)
    adamoe.hf.save(model, tmp_path / "saved", tokenizer=tok)
    adamoe.hf.export_remote(model, tmp_path / "remote", tokenizer=tok)
    assert write_lm_eval_tasks(load_task("synthetic-facts", limit=8), tmp_path / "tasks") == ["adamoe_mc_std"]
    return tmp_path / "saved", tmp_path / "remote", tmp_path / "tasks"


def _outputs(folder: Path) -> tuple[dict, list[float]]:
    (results,) = folder.rglob("results_*.json")
    (samples,) = folder.rglob("samples_adamoe_mc_std_*.jsonl")
    rows = sorted((json.loads(line) for line in samples.read_text().splitlines()), key=lambda r: r["doc_id"])
    return json.loads(results.read_text()), [float(ll) for r in rows for ll, _ in r["filtered_resps"]]


def test_adamoe_lm_eval_matches_plain_lm_eval_on_the_remote_export(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    saved, remote, tasks = _checkpoints(tmp_path)
    common = ["--tasks", "adamoe_mc_std", "--include_path", str(tasks), "--batch_size", "8", "--log_samples"]
    ours_args = [
        "--model",
        "adamoe",
        "--model_args",
        f"pretrained={saved}",
        "--output_path",
        str(tmp_path / "o"),
    ]
    plain_args = ["--model", "hf", "--model_args", f"pretrained={remote},trust_remote_code=True"]

    assert main(["lm-eval", *ours_args, *common]) == 0
    printed = capsys.readouterr().out
    assert "adamoe_mc_std" in printed and "adamoe routing" in printed and "true experts/token" in printed

    run_without_adamoe(
        PLAIN_LM_EVAL, *plain_args, *common, "--output_path", str(tmp_path / "p"), cwd=tmp_path
    )

    ours, our_lls = _outputs(tmp_path / "o")
    theirs, their_lls = _outputs(tmp_path / "p")
    assert ours["results"]["adamoe_mc_std"]["acc,none"] == theirs["results"]["adamoe_mc_std"]["acc,none"]
    assert (
        ours["results"]["adamoe_mc_std"]["acc_norm,none"]
        == theirs["results"]["adamoe_mc_std"]["acc_norm,none"]
    )
    assert len(our_lls) == len(their_lls) == 32  # 8 items x 4 choices
    assert max(abs(a - b) for a, b in zip(our_lls, their_lls)) <= 1e-4
    routing = ours["config"]["adamoe_routing"]  # routing rides in lm-eval's own results file
    assert routing["tokens"] > 0 and 0 < routing["load"] <= 3
