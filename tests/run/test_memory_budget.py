"""The memory estimate (run/memory_budget.py): recorded beside the measured peak, its parts following the models
and the batch, and a configuration above ``--max-memory`` refused before anything trains or launches."""

import pytest

from conftest import LM_FAST
from entrenar_bench.errors import ConfigError
from entrenar_bench.run.app import distill_settings, run
from entrenar_bench.run.job import planned_memory
from entrenar_bench.run.memory_budget import GB


def _estimate(compose_cfg, *overrides):
    cfg = compose_cfg(*LM_FAST, *overrides)
    return planned_memory(cfg, distill_settings(cfg)).as_record()


def test_a_run_records_its_estimate_beside_its_measured_peak(compose_cfg, tmp_path):
    record = run(compose_cfg(*LM_FAST), tmp_path)
    estimate, params = record["memory_estimate"], record["params"]
    assert estimate["student"] == pytest.approx(4 * params["student"] / GB)
    assert estimate["gradients"] == pytest.approx(4 * params["trainable"] / GB)
    assert estimate["optimiser"] == pytest.approx(3 * estimate["gradients"])  # two moments, the step's square root
    assert estimate["teacher"] == 0 and estimate["store"] > 0      # the stored teacher: only its batch
    parts = sum(v for k, v in estimate.items() if k != "total_gb")
    assert estimate["total_gb"] == pytest.approx(parts) and record["peak_memory_gb"] >= 0


def test_the_parts_follow_the_teacher_the_batch_and_the_trainable_parameters(compose_cfg):
    cached = _estimate(compose_cfg)
    online = _estimate(compose_cfg, "distill.teacher_outputs=online")
    assert online["teacher"] > 0 and online["store"] == 0 and cached["teacher"] == 0
    double = _estimate(compose_cfg, "data.batch_size=64")
    assert double["activations"] == pytest.approx(2 * _estimate(compose_cfg, "data.batch_size=32")["activations"])
    lora = _estimate(compose_cfg, "finetune=lora", "finetune.r=2", "distill=none")
    full = _estimate(compose_cfg, "finetune=full", "distill=none")
    assert 0 < lora["gradients"] < full["gradients"] and lora["logits"] == full["logits"] > 0  # the CE's copies
    assert cached["logits"] > full["logits"]                    # and the divergence's gradient buffer and chunk
    sampled = _estimate(compose_cfg, "distill.on_policy=0.5")
    assert sampled["generation"] > 0 and cached["generation"] == 0  # the KV cache of sampling


def test_a_run_above_its_memory_limit_is_refused_before_it_trains(compose_cfg, tmp_path):
    with pytest.raises(ConfigError, match=r"^estimated peak memory [\d.e-]+ GB \(student .*\) does not fit "
                                          r"--max-memory 1e-06 GB \(limits.max_memory_gb\)"):
        run(compose_cfg(*LM_FAST, "limits.max_memory_gb=0.000001"), tmp_path)
    assert not (tmp_path / "generations.json").exists() and not (tmp_path / "student").exists()


def test_max_memory_refuses_a_sweep_before_launch_in_one_line(run_cli, bench_home):
    sweeps = lambda: set((bench_home / "outputs").glob("compare/*"))  # noqa: E731
    before = sweeps()
    result = run_cli("compare", "--strategies", "none,kd", "--runs", "1", "--max-memory", "0.000001", "--", *LM_FAST)
    assert result.returncode == 2 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "does not fit --max-memory 1e-06 GB" in lines[0], result.stderr
    assert sweeps() == before                                       # nothing launched
    assert run_cli("compare", "--max-memory", "0", "--", *LM_FAST).returncode == 2
