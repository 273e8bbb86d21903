"""A width-pruned student at a parameter target trains with kd and its run records the pruning, the student's
size and its held-out metrics right after pruning."""

import json

from entrenar_bench.run.app import run
from pretrained_dirs import WORDS, save_gqa_llama


def test_a_student_pruned_to_a_parameter_target_trains_and_records_its_pruning(compose_cfg, tmp_path):
    save_gqa_llama(tmp_path / "teacher")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"text": f"the {w} sat on a mat and ran far away ."}) + "\n"
                              for w in WORDS * 3))
    target = 3000
    cfg = compose_cfg("+experiment=smollm2", f"teacher.model.path={tmp_path / 'teacher'}", f"data.path={corpus}",
                      "data.block_size=16", "data.val_fraction=0.1", "data.test_fraction=0.1", "data.train_subset=4",
                      "data.batch_size=2", "student.method=angular",
                      "student.keep=3", "student.calibration_blocks=4", f"student.params={target}", "train.epochs=1",
                      "optim.warmup_steps=0", "distill=kd", "distill.teacher_top_k=4")
    record = run(cfg, tmp_path / "run")
    assert record["status"] == "completed", record.get("error")
    pruning = record["pruning"]
    assert abs(record["params"]["student"] - target) <= 0.05 * target
    assert pruning["params"] == record["params"]["student"] and pruning["params_target"] == target
    assert pruning["method"] == "angular" and len(pruning["layers"]) == 3 and pruning["layers"][-1] == 3
    assert len(pruning["scores"]) == 3 and pruning["calibration_blocks"] == 4
    assert pruning["widths"]["heads"] == 4 and pruning["widths"]["hidden"] % 4 == 0
    assert record["metrics_before"]["loss"] > 0 and record["metrics"]["loss"] > 0
