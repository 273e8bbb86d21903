"""Export end to end: a tiny language-model compare (real training), its best student exported, loaded with
``AutoModelForCausalLM.from_pretrained`` and generating; the card holds the seeds and the 95% CI."""

import json
from pathlib import Path

import torch
from conftest import LM_FAST
from transformers import AutoModelForCausalLM


def test_compare_then_export_loads_and_generates(run_cli, tmp_path):
    compared = run_cli("compare", "--strategies", "none,kd", "--runs", "2", "--metric", "loss", "--format", "json",
                       "--", *LM_FAST)
    assert compared.returncode == 0, compared.stderr[-2000:]
    document = json.loads(compared.stdout)
    assert document["metric"] == {"name": "loss", "lower_is_better": True}
    sweep = Path(document["sweep_dir"])
    assert all((sweep / str(job) / "student" / "config.json").is_file() for job in range(4))

    target = tmp_path / "exported"
    exported = run_cli("export", str(sweep), "--metric", "loss", "--to", str(target))
    assert exported.returncode == 0, exported.stderr
    best = document["best"]["strategy"]
    model = AutoModelForCausalLM.from_pretrained(target).eval()
    out = model.generate(torch.tensor([[1, 2, 3]]), max_new_tokens=5, do_sample=False)
    assert out.shape == (1, 8) and int(out.max()) < 32  # ids of the Markov source's 32 tokens

    card = (target / "README.md").read_text()
    ci = document["best"]["metric"]["ci95"]
    assert (f"group `{best}` (selected by the report)" in card
            and "- The group's runs: seeds 0, 1; teacher seeds 0." in card)
    assert f"95% CI [{ci[0]:.4f}, {ci[1]:.4f}]" in card and "Welch's t-test" in card
    assert "No tokenizer: the data (`entrenar_bench.data.markov.MarkovDataModule`) is token ids only" in card
    assert "python -m entrenar_bench.run -m " in card

    again = run_cli("export", str(sweep), "--to", str(target))
    assert again.returncode == 2 and "exists and is not empty" in again.stderr
