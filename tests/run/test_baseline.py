"""distill=none is the student alone whatever a sweep sets: its logit_loss is none before it is checked and recorded."""

from omegaconf import OmegaConf

from entrenar_bench.run.app import distill_settings
from entrenar_bench.run.baseline import student_alone


def test_the_baseline_drops_a_swept_logit_loss_and_other_strategies_keep_it(compose_cfg):
    cfg = compose_cfg("+experiment=lm", "distill=none", "distill.logit_loss=reverse_kl")
    alone = student_alone(cfg)
    assert alone.distill.logit_loss == "none" and cfg.distill.logit_loss == "reverse_kl"  # a copy
    assert alone.distill.alpha == 0.5 and not distill_settings(alone).needs_teacher  # lm's alpha, yet no teacher
    kd = compose_cfg("+experiment=lm", "distill.logit_loss=reverse_kl")
    assert student_alone(kd) is kd and kd.distill.logit_loss == "reverse_kl"
    plain = compose_cfg("+experiment=lm", "distill=none")
    assert student_alone(plain) is plain  # nothing to change: the same config (and hash) as before


def test_a_read_only_config_is_copied(compose_cfg):
    cfg = compose_cfg("distill=none", "distill.logit_loss=kl")
    OmegaConf.set_readonly(cfg, True)
    assert student_alone(cfg).distill.logit_loss == "none"
