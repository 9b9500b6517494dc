"""Config files with overrides and run directories."""

from __future__ import annotations

import pytest

from adamoe.runs import load_config, make_run_dir, pick


def test_overrides_nest_and_parse_yaml_values(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("a: 1\nb: {c: x}\n")
    cfg = load_config(f, ["b.c=3.5", "d.e=[1, 2]", "a=true"])
    assert cfg == {"a": True, "b": {"c": 3.5}, "d": {"e": [1, 2]}}


@pytest.mark.parametrize(
    ("path", "overrides", "needle"),
    [
        ("missing.yaml", [], "does not exist"),
        (None, ["novalue"], "key=value"),
    ],
)
def test_bad_config_names_the_problem(tmp_path, path, overrides, needle):
    with pytest.raises(ValueError, match=needle):
        load_config(None if path is None else tmp_path / path, overrides)


def test_non_mapping_yaml_is_refused(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("- 1\n- 2\n")
    with pytest.raises(ValueError, match="mapping"):
        load_config(f)


def test_pick_refuses_unknown_keys_and_fills_defaults():
    assert pick({"a": 2}, {"a": 1, "b": 3}, section="s") == {"a": 2, "b": 3}
    with pytest.raises(ValueError, match=r"s: unknown key\(s\) \['z'\]"):
        pick({"z": 1}, {"a": 1}, section="s")


def test_run_dirs_never_collide(tmp_path):
    a = make_run_dir(tmp_path, "eval")
    b = make_run_dir(tmp_path, "eval")
    assert a != b and a.is_dir() and b.is_dir()


def test_run_directory_removes_an_early_failure_and_marks_a_later_one(tmp_path):
    from adamoe.runs import FAILED_MARKER, run_directory, save_run_config

    with pytest.raises(ValueError, match="early"), run_directory(tmp_path, "eval") as early:
        save_run_config(early, {"a": 1})
        raise ValueError("early")
    assert not early.exists()  # created here, held only config.yaml
    with pytest.raises(KeyError), run_directory(tmp_path, "eval") as late:
        (late / "cache").mkdir()
        raise KeyError("boom")
    assert (late / FAILED_MARKER).read_text() == "KeyError: 'boom'\n"
    given = tmp_path / "given"
    given.mkdir()
    with pytest.raises(ValueError), run_directory(tmp_path, "eval", str(given)):
        raise ValueError("first line\nsecond line")
    assert (
        given / FAILED_MARKER
    ).read_text() == "ValueError: first line\n"  # a folder it did not create stays
    with run_directory(tmp_path, "eval", str(given)) as again:
        pass
    assert again == given and not (given / FAILED_MARKER).exists()
