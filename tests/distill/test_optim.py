"""The optim group: the default is today's Adam with per-epoch cosine decay; AdamW and per-step schedules with
warm-up come from config; a warm-up on the per-epoch schedule is refused before anything runs."""

import pytest
import torch
from conftest import FAST
from omegaconf import OmegaConf

from entrenar_bench.distill.optim import optimization
from entrenar_bench.run.app import run


def _params():
    return [torch.nn.Parameter(torch.zeros(3))]


def test_the_default_is_adam_with_cosine_stepped_once_an_epoch():
    config = optimization(None, _params(), lr=0.1, weight_decay=0.0, epochs=4, total_steps=40)
    assert type(config["optimizer"]) is torch.optim.Adam and config["lr_scheduler"]["interval"] == "epoch"
    scheduler = config["lr_scheduler"]["scheduler"]
    assert isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR) and scheduler.T_max == 4


def test_adamw_warms_up_then_decays_per_step(compose_cfg):
    optim = OmegaConf.to_container(compose_cfg("optim=adamw", "optim.warmup_steps=5").optim)
    config = optimization(optim, _params(), lr=0.1, weight_decay=0.0, epochs=2, total_steps=20)
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    assert type(optimizer) is torch.optim.AdamW and optimizer.param_groups[0]["weight_decay"] == 0.01
    assert config["lr_scheduler"]["interval"] == "step"
    lrs = []
    for _ in range(20):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == 0 and lrs[5] == pytest.approx(0.1) and lrs[1] < lrs[2] < lrs[5]  # linear warm-up to the peak
    assert lrs[6] > lrs[12] > lrs[19] > 0  # then cosine decay towards 0


def test_a_run_with_adamw_and_warm_up(compose_cfg, tmp_path):
    record = run(compose_cfg(*FAST, "optim=adamw", "optim.warmup_steps=3", "optim.scheduler=linear"), tmp_path)
    assert record["status"] == "completed" and record["config"]["optim"]["name"] == "adamw"


@pytest.mark.parametrize("overrides, message", [
    (["optim.warmup_steps=3"], "optim.warmup_steps needs a per-step schedule"),
    (["optim.scheduler=steps"], "optim.scheduler must be one of cosine_epoch, cosine, linear, constant"),
    (["optim=adamw", "optim.warmup_steps=-1"], "optim.warmup_steps must be >= 0"),
])
def test_bad_optim_settings_are_refused(run_app, overrides, message):
    proc = run_app(*overrides)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
