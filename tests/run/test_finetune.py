"""Fine-tuning: the base student is trained once and cached; full trains every weight, LoRA only adapters."""

import pytest
import torch
from conftest import FAST
from hydra.utils import instantiate

from entrenar_bench.run.finetune import build_student, load_base_student
from entrenar_bench.run.app import run
from entrenar_bench.tasks import task_for

BASE_FAST = [*FAST, "finetune.base.epochs=2"]


def _setup(compose_cfg, *overrides):
    """The config and its data's task (what the model cache and fine-tuning are given)."""
    cfg = compose_cfg(*overrides)
    datamodule = instantiate(cfg.data)
    datamodule.setup("fit")
    return cfg, task_for(datamodule)


def test_base_student_is_trained_once_and_shared(compose_cfg):
    cfg, dm = _setup(compose_cfg, "finetune=full", *BASE_FAST)
    _, directory = load_base_student(cfg, dm)
    stamp = (directory / "student.pt").stat().st_mtime_ns
    lora_cfg, _ = _setup(compose_cfg, "finetune=lora", "finetune.r=2", *BASE_FAST)
    assert load_base_student(lora_cfg, dm)[1] == directory                      # same base for full and LoRA
    assert (directory / "student.pt").stat().st_mtime_ns == stamp               # loaded, not retrained
    other, _ = _setup(compose_cfg, "finetune=full", "finetune.base.epochs=3", *FAST)
    assert load_base_student(other, dm)[1] != directory                         # its own settings, its own cache
    assert load_base_student(compose_cfg(), dm) is None                         # finetune=none: from scratch


def test_full_trains_everything_from_the_base_weights(compose_cfg):
    cfg, dm = _setup(compose_cfg, "finetune=full", *BASE_FAST)
    base, _ = load_base_student(cfg, dm)
    reference = {k: v.clone() for k, v in base.state_dict().items()}
    student, info = build_student(cfg, dm, load_base_student(cfg, dm))
    assert all(p.requires_grad for p in student.parameters()) and student.training
    assert all(torch.equal(reference[k], v) for k, v in student.state_dict().items())
    assert info["method"] == "full" and info["trainable"] == sum(p.numel() for p in student.parameters())


def test_lora_adapts_every_linear_and_conv_layer_with_the_configured_rank(compose_cfg):
    cfg, dm = _setup(compose_cfg, "finetune=lora", "finetune.r=4", "finetune.alpha=8", *BASE_FAST)
    student, info = build_student(cfg, dm, load_base_student(cfg, dm))
    trainable = {n: p for n, p in student.named_parameters() if p.requires_grad}
    assert trainable and all(".lora_A." in n or ".lora_B." in n for n in trainable)
    assert info["target_modules"] == ["convs.0", "convs.1", "fc", "head"] and info["r"] == 4
    assert student.fc.lora_A["default"].weight.shape[0] == 4 and student.fc.scaling["default"] == 2.0
    assert info["trainable"] == sum(p.numel() for p in trainable.values())
    only_fc, _ = build_student(*_setup(compose_cfg, "finetune=lora", "finetune.target_modules=[fc]", *BASE_FAST),
                               load_base_student(cfg, dm))
    assert {n.split(".")[0] for n, p in only_fc.named_parameters() if p.requires_grad} == {"fc"}


def test_a_lora_run_trains_only_the_adapters(compose_cfg, tmp_path):
    cfg = compose_cfg("finetune=lora", "finetune.r=2", *BASE_FAST)
    record = run(cfg, tmp_path)
    assert record["status"] == "completed" and record["finetune"]["method"] == "lora"
    assert record["params"]["trainable"] == record["finetune"]["trainable"] < record["params"]["student"]
    assert 0 < record["finetune"]["base"]["accuracy"] <= 1


def test_bad_finetune_setting_fails_the_run(compose_cfg, tmp_path):
    with pytest.raises(Exception, match="finetune.r must be >= 1"):
        run(compose_cfg("finetune=lora", "finetune.r=0", *BASE_FAST), tmp_path)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_lora_and_full_on_a_gpu_price_with_the_measured_device(compose_cfg, tmp_path):
    from entrenar_bench.cost.model import measured_factor

    for method in ("lora", "full"):
        record = run(compose_cfg(f"finetune={method}", "trainer=gpu", *BASE_FAST), tmp_path / method)
        assert record["status"] == "completed" and record["device"].startswith("cuda")
        assert record["peak_memory_kind"] == "cuda_max_allocated" and record["peak_memory_gb"] > 0
        _, assumed = measured_factor(record["device"])
        assert assumed == ("A100" not in record["device"] and "V100" not in record["device"]
                           and "T4" not in record["device"])
