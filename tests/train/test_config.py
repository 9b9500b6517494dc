"""TrainConfig validation and the aux-coefficient schedule it builds."""

from __future__ import annotations

import pytest

from adamoe.train.config import TrainConfig


def test_defaults_validate() -> None:
    assert TrainConfig().validate().global_batch(3) == 8 * 1 * 3


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lr", 0.0),
        ("weight_decay", -1.0),
        ("epochs", 0),
        ("max_steps", 0),
        ("batch_size", 0),
        ("grad_accum", 1.5),
        ("max_length", 1),
        ("lr_scheduler", "poly"),
        ("objective", "ce"),
        ("warmup_steps", -1),
        ("max_grad_norm", 0.0),
        ("aux_loss", "gshard"),
        ("aux_schedule", "exp"),
        ("aux_coef", -1e-3),
        ("aux_coef_end", -1e-3),
        ("aux_boundary", "half"),
        ("z_loss_coef", -1.0),
        ("trainable", "everything"),
        ("dropout", 1.0),
        ("expert_dropout", -0.1),
        ("checkpoint_every", -1),
        ("keep_last", 0),
        ("log_every", 0),
    ],
)
def test_bad_field_is_a_one_line_error_naming_it(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"^{field}: ") as err:
        TrainConfig(**{field: value}).validate()
    assert "\n" not in str(err.value)


def test_a_bad_objective_names_the_field_the_choices_and_the_fix() -> None:
    with pytest.raises(ValueError) as err:
        TrainConfig(objective="contrastive").validate()
    assert str(err.value) == (
        "objective: expected one of lm, mc, got 'contrastive' (--set objective=lm or --set objective=mc)"
    )
    assert TrainConfig().objective == "lm"  # the experiments' default is unchanged


def test_checkpointing_needs_an_output_dir() -> None:
    with pytest.raises(ValueError, match=r"^output_dir: "):
        TrainConfig(checkpoint_every=5).validate()
    with pytest.raises(ValueError, match=r"^output_dir: "):
        TrainConfig(resume=True).validate()


def test_from_dict_names_unknown_fields() -> None:
    with pytest.raises(
        ValueError, match=r"^TrainConfig: unknown key\(s\) learning_rate; valid keys: lr, weight_decay, "
    ):
        TrainConfig.from_dict({"learning_rate": 1e-3})
    assert TrainConfig.from_dict({"lr": 1e-3}).lr == 1e-3
    cfg = TrainConfig(lr=2e-4, aux_boundary=7)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_step_schedule_with_epoch_boundary_is_tight_for_the_first_epoch_only() -> None:
    cfg = TrainConfig(aux_schedule="step", aux_coef=1e-1, aux_coef_end=1e-3, aux_boundary="epoch")
    sched = cfg.aux_coefficient(steps_per_epoch=5, total_steps=10)
    assert [sched(s) for s in range(10)] == [1e-1] * 5 + [1e-3] * 5


def test_linear_schedule_spans_the_run() -> None:
    cfg = TrainConfig(aux_schedule="linear", aux_coef=1.0, aux_coef_end=0.0)
    sched = cfg.aux_coefficient(steps_per_epoch=3, total_steps=4)
    assert [sched(s) for s in range(5)] == pytest.approx([1.0, 0.75, 0.5, 0.25, 0.0])
