"""`adamoe rbench` through `adamoe.cli.main`: report files, resume from cache, one-line errors, no partial output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from adamoe.cli import main

PNG = b"\x89PNG\r\n\x1a\n"
REPORT = ("metrics.json", "report.md", "report.html")

TINY = [
    "rbench",
    "--model",
    "tiny-llama",
    "--model",
    "tiny-mixtral",
    "--limit",
    "2",
    "--max-new-tokens",
    "2",
    "--no-progress",
    "--quick",
    "--set",
    "threads=1",
    "--set",
    "safety.harmful=generated",
    "--set",
    "safety.toxicity=generated",
    "--set",
    "ood.shifts=[upper]",
    "--set",
    "adversarial.attacks={char: {kinds: [swap], max_edits: 1}}",
]


@pytest.fixture(autouse=True)
def restore_threads(offline_wheel) -> Iterator[None]:
    """One thread count restored after each test; every test reads the miniature offline wheel."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _strict_json(path: Path) -> dict:
    def no_nan(token: str) -> None:
        raise AssertionError(f"{path.name} holds {token}: not strict JSON")

    return json.loads(path.read_text(), parse_constant=no_nan)


def test_cli_writes_a_side_by_side_report_and_resumes_from_cache(tmp_path, capsys) -> None:
    run_dir = tmp_path / "run"
    assert main([*TINY, "--run-dir", str(run_dir)]) == 0
    metrics = _strict_json(run_dir / "metrics.json")
    assert metrics["models"] == ["tiny-llama", "tiny-mixtral"]
    assert metrics["dims"] == ["safety", "hallucination", "adversarial", "ood"]
    assert metrics["results"]["tiny-llama"]["dims"]["ood"]["routing"] is None
    assert metrics["results"]["tiny-mixtral"]["dims"]["ood"]["routing"]["shift"]["upper"]["js_mean"] >= 0
    # every number a metric table shows carries its n and 95% interval, in the JSON too
    shown = 0
    for m in metrics["models"]:
        for d, r in metrics["results"][m]["dims"].items():
            for name, value in r["metrics"].items():
                if value is None:
                    continue
                est = r["estimates"][name]
                assert est["n"] >= 1 and est["low"] <= est["high"] and est["value"] == value, (m, d, name)
                shown += 1
            for row in metrics["tables"][d]["rows"]:
                cell = row[f"{m} [95% CI]"]
                assert cell is None or {"n", "low", "high"} <= set(cell), (d, row)
    assert shown >= 4 * 4
    assert set(metrics["comparisons"]) == set(metrics["dims"])

    md = (run_dir / "report.md").read_text()
    # the report carries the command that reproduces it: the models, dims and run folder given here
    command = md.split("Command: `", 1)[1].split("`", 1)[0]
    assert command.startswith("adamoe rbench ") and f"--run-dir {run_dir}" in command
    assert "--model tiny-llama --model tiny-mixtral" in command and metrics["command"] == command
    header = "| metric (%) | better | n | chance | tiny-llama [95% CI] | tiny-mixtral [95% CI] |"
    assert header in md and "Δ tiny-mixtral − tiny-llama (pp) [95% CI]" in md
    assert "| tiny-llama | – | – |" in md  # dense model: routing columns are dashes
    assert "| upper | surface | 2/2 | yes |" in md and "| data:cb | dataset |" in md
    html = (run_dir / "report.html").read_text()
    assert html.startswith("<!doctype html>") and "routing_js.png" in html
    for png in ("headline.png", "ood.png", "routing_js.png"):
        assert (run_dir / png).read_bytes().startswith(PNG)
    assert (run_dir / "config.yaml").is_file()
    assert "written to" in capsys.readouterr().out

    # same run dir again: every item comes from the cache, the numbers do not change
    assert main([*TINY, "--run-dir", str(run_dir)]) == 0
    again = _strict_json(run_dir / "metrics.json")
    for m in ("tiny-llama", "tiny-mixtral"):
        computed = again["results"][m]["computed"]
        assert computed == {"score": 0, "generate": 0, "attack": 0, "attack_queries": 0}
        for d in metrics["dims"]:
            assert again["results"][m]["dims"][d]["metrics"] == metrics["results"][m]["dims"][d]["metrics"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "/no/such/model/dir"], "neither a known name"),
        (["--dims", "safety,robustness"], "unknown dimension"),
        (["--set", "colour=red"], "unknown key"),
        (["--limit", "0"], "limit"),
        (["--set", "safety.benign=/no/such/file.txt"], "no such file"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(
    tmp_path, capsys, extra: list[str], message: str
) -> None:
    run_dir = tmp_path / "run"
    assert main(["rbench", "--model", "tiny-llama", "--limit", "1", "--run-dir", str(run_dir), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("adamoe rbench: error:") and "\n" not in err and message in err
    assert not run_dir.exists()


def test_empty_data_is_exit_2_and_writes_nothing(tmp_path, capsys) -> None:
    empty = tmp_path / "benign.txt"
    empty.write_text("   \n\n")
    run_dir = tmp_path / "run"
    code = main(
        [
            "rbench",
            "--model",
            "tiny-llama",
            "--dims",
            "safety",
            "--run-dir",
            str(run_dir),
            "--set",
            f"safety.benign={empty}",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert "empty data" in err and "\n" not in err
    assert not run_dir.exists()


def test_a_model_that_fails_to_load_mid_run_leaves_no_report(tmp_path, capsys) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "llama"}')  # passes the spec check, no weights
    run_dir = tmp_path / "run"
    args = [*TINY, "--dims", "ood", "--model", str(broken), "--run-dir", str(run_dir)]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert str(broken) in err and "\n" not in err
    assert not any((run_dir / name).exists() for name in REPORT)
    assert not list(run_dir.glob("*.png"))
    assert (run_dir / "cache" / "tiny-llama" / "ood.jsonl").is_file()  # finished work stays for a resume


def test_report_json_is_strict_and_dense_routing_is_dashed() -> None:
    from adamoe.eval.report import json_safe
    from adamoe.rbench.report import routing_table

    assert json_safe({"a": float("nan"), "b": (1.0, float("inf")), 3: [0.5]}) == {
        "a": None,
        "b": [1.0, None],
        "3": [0.5],
    }
    result = {
        "models": ["dense", "moe"],
        "results": {
            "dense": {"dims": {"ood": {"routing": None}}},
            "moe": {
                "dims": {
                    "ood": {
                        "routing": {
                            "references": ["id"],
                            "stages": {
                                "id": {"load": 2.0, "entropy": 1.0, "tokens": 10},
                                "upper": {"load": 1.5, "entropy": 0.9, "tokens": 12},
                            },
                            "shift": {
                                "upper": {
                                    "reference": "id",
                                    "delta_load": -0.5,
                                    "delta_entropy": -0.1,
                                    "js_mean": 0.01,
                                    "js_max": 0.02,
                                }
                            },
                        }
                    }
                }
            },
        },
    }
    rows = routing_table(result, "ood").cells()[0]
    assert rows[0] == ["dense", *["–"] * 11]
    assert rows[1][:6] == ["moe", "id (ref)", "–", "10", "2.000", "–"]
    assert rows[2] == [
        "moe",
        "upper",
        "id",
        "12",
        "1.500",
        "-0.500",
        "0.900",
        "-0.100",
        "1.00e-02",
        "2.00e-02",
        "–",
        "–",
    ]
    result["results"]["moe"]["dims"]["ood"]["routing"]["shift"]["upper"].update(p_holm=0.3, within_noise=True)
    assert routing_table(result, "ood").cells()[0][2][-2:] == ["0.300", "within noise"]
