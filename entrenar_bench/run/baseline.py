"""``distill=none`` is the student alone, whatever else a sweep sets: ``compare --strategies none,kd --
distill.logit_loss=uld,gold`` sweeps the logit loss over both strategies, and an experiment's ``distill.alpha``
(``+experiment=lm`` sets 0.5) would otherwise turn ``none`` into kd with that loss. Its ``distill.logit_loss`` is
set to ``none`` and a user's ``terms`` dropped before the run is checked and recorded, so its runs are one group
in the report.
"""

from __future__ import annotations

import copy

from omegaconf import DictConfig, OmegaConf, open_dict

from entrenar_bench.distill.settings import STRATEGY_ORDER

BASELINE = STRATEGY_ORDER[-1]  # none


def student_alone(cfg: DictConfig) -> DictConfig:
    """``cfg`` with ``distill.logit_loss=none`` and no ``terms`` where ``distill.name`` is the baseline (a copy);
    else ``cfg``."""
    distill = cfg.get("distill")
    if not isinstance(distill, DictConfig) or distill.get("name") != BASELINE or \
            (distill.get("logit_loss") == "none" and "terms" not in cfg):
        return cfg
    cfg = copy.deepcopy(cfg)
    OmegaConf.set_readonly(cfg, False)
    with open_dict(cfg):
        cfg.distill.logit_loss = "none"
        cfg.pop("terms", None)
    return cfg
