"""+experiment=lm_cross end to end in-process (tiny sizes): uld and gold train the pair-reading student against the
symbol-reading teacher and record its truth_kl; the logit terms that need one vocabulary, and uld/gold where there
is one, are refused before launch in one line."""

import pytest

from entrenar_bench.errors import ConfigError
from entrenar_bench.run.app import run
from entrenar_bench.run.checks import validate_config

CROSS_FAST = ["+experiment=lm_cross", "data.num_train=256", "data.num_val=64", "data.num_test=64",
              "data.train_subset=64", "data.seq_len=18", "teacher.train.epochs=1", "train.epochs=2"]


def test_uld_and_gold_distil_across_tokenizations_and_record_the_truth_kl(compose_cfg, tmp_path):
    records = {loss: run(compose_cfg(*CROSS_FAST, f"distill.logit_loss={loss}"), tmp_path / loss)
               for loss in ("uld", "gold")}
    for record in records.values():
        m = record["metrics"]
        assert record["status"] == "completed" and m["truth_kl"] > 0 and 0 < m["bayes_accuracy"] <= 1
        assert "teacher_kl" not in m and record["teacher_signal"]["mode"] == "online"
        assert record["teacher"]["metrics"]["truth_kl"] > 0       # the teacher measured on its own symbols
        assert record["alignment"] == {"student_widths": [2, 1], "aligned_fraction": 1 / 3}  # singles: 1 symbol in 3
        assert record["params"]["teacher"] < 150_000 and record["params"]["student"] > 60_000  # 32 vs 1,056 ids
    assert records["uld"]["teacher"]["cache"] == records["gold"]["teacher"]["cache"]
    assert records["uld"]["metrics"]["truth_kl"] != records["gold"]["metrics"]["truth_kl"]


@pytest.mark.parametrize("overrides, message", [
    (["+experiment=lm", "distill.logit_loss=uld"],
     r"^distill.logit_loss=uld aligns two tokenizations, .*: distill.logit_loss=kl applies$"),
    (["+experiment=lm", "distill.logit_loss=gold"], "distill.logit_loss=kl applies"),
    (["+experiment=lm_cross", "distill=mse"],
     r"^distill.logit_loss=mse \(distill=mse\) compares the logits id by id and needs one vocabulary, .*"
     r"\(data.student_widths=\[2, 1\]\): use distill.logit_loss=uld or gold$"),
    (["+experiment=lm_cross"], "distill.logit_loss=kl .* needs one vocabulary"),
    (["+experiment=lm_cross", "distill=progressive", "distill.logit_loss=uld"],
     "distill.layer_weight .* pairs positions of one tokenization"),
    (["+experiment=lm_cross", "distill.logit_loss=gold", "distill.on_policy=0.5"], "distill.on_policy"),
    (["+experiment=smollm2_cross", "distill.logit_loss=gold", "distill.teacher_top_k=64"],
     r"^distill.logit_loss=gold from a top-64 teacher store is far from the full teacher .*"
     r"distill.teacher_top_k=1024 \(or more\) or distill.teacher_outputs=online$"),
])
def test_a_logit_term_that_does_not_fit_the_tokenizations_is_refused(compose_cfg, overrides, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(compose_cfg(*overrides))


def test_the_baseline_ignores_the_logit_loss_across_tokenizations(compose_cfg):
    validate_config(compose_cfg("+experiment=lm_cross", "distill=none", "distill.logit_loss=uld"))


@pytest.mark.parametrize("overrides", [["distill.teacher_top_k=64", "distill.teacher_outputs=online"],
                                       ["distill.teacher_top_k=1024"], ["distill=none", "distill.teacher_top_k=64"]])
def test_a_small_top_k_store_is_refused_only_where_uld_or_gold_read_it(compose_cfg, overrides):
    validate_config(compose_cfg("+experiment=smollm2_cross", "distill.logit_loss=gold", *overrides))
