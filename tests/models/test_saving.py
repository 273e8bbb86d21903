"""A saved student loads as its users load it: LoRA merged (same outputs), the tokenizer beside it, a GGUF-loaded
model as a plain one, any other model as a safetensors state dict; the model itself is left as it was."""

import json
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from peft import LoraConfig, inject_adapter_in_model
from safetensors.torch import load_model
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, PreTrainedTokenizerFast

from entrenar_bench.models.causal_lm import causal_lm
from entrenar_bench.models.saving import MODEL_CONFIG, WEIGHTS, has_tokenizer, save_student, saved_format


def micro_llama():
    torch.manual_seed(0)
    return causal_lm(LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                 num_key_value_heads=2, max_position_embeddings=32), vocab_size=12)


def word_tokenizer(directory):
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace

    vocabulary = {w: i for i, w in enumerate(["<unk>", "<eos>", "in", "the", "beginning", "god", "created"])}
    tokenizer = Tokenizer(WordLevel(vocabulary, unk_token="<unk>"))
    tokenizer.pre_tokenizer = Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", eos_token="<eos>").save_pretrained(directory)
    return directory


def test_lora_is_merged_and_the_student_loads_and_generates(tmp_path):
    model = inject_adapter_in_model(LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]), micro_llama())
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_()  # a trained adapter: B is no longer zero
    ids = torch.tensor([[1, 2, 3, 4]])
    expected = model.eval()(ids).logits
    save_student(model, tmp_path / "student", word_tokenizer(tmp_path / "tok"))
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "student").eval()
    assert torch.allclose(loaded(ids).logits, expected, atol=1e-5)
    assert not any("lora" in name for name, _ in loaded.named_parameters())
    assert any("lora" in name for name, _ in model.named_parameters())  # the run's model is left as it was
    assert loaded.config.use_cache and not model.config.use_cache
    generation = json.loads((tmp_path / "student" / "generation_config.json").read_text())
    assert generation.get("use_cache", True) and loaded.generation_config.use_cache  # generates with the KV cache
    assert model.generation_config.use_cache is False  # the run's model is left as it was
    assert loaded.generate(ids, max_new_tokens=3, do_sample=False).shape == (1, 7)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "student")
    assert tokenizer("in the beginning")["input_ids"] == [2, 3, 4]
    assert saved_format(tmp_path / "student") == "huggingface" and has_tokenizer(tmp_path / "student")


def test_a_model_loaded_from_gguf_is_saved_as_a_plain_one(tmp_path):
    model = micro_llama()
    model.hf_quantizer = SimpleNamespace(is_serializable=lambda: False,
                                         quantization_config=SimpleNamespace(quant_method="gguf"))
    model.config.quantization_config = {"quant_method": "gguf"}
    save_student(model, tmp_path / "student")
    assert "quantization_config" not in json.loads((tmp_path / "student" / "config.json").read_text())
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "student")
    assert torch.equal(loaded.lm_head.weight, model.lm_head.weight)
    model.hf_quantizer.quantization_config.quant_method = "bitsandbytes"
    with pytest.raises(ValueError, match="quantized with bitsandbytes, which transformers cannot save"):
        save_student(model, tmp_path / "other")
    assert not (tmp_path / "other").exists() and not list(tmp_path.glob(".*partial"))


def test_other_models_are_a_state_dict_and_their_config(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    (tmp_path / "student").mkdir()
    (tmp_path / "student" / "stale.txt").write_text("an earlier save")  # replaced as a whole
    save_student(model, tmp_path / "student", model_config={"_target_": "entrenar_bench.models.networks.MLP"})
    assert sorted(p.name for p in (tmp_path / "student").iterdir()) == [WEIGHTS, MODEL_CONFIG]
    copy = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    load_model(copy, str(tmp_path / "student" / WEIGHTS))
    assert all(torch.equal(a, b) for a, b in zip(copy.state_dict().values(), model.state_dict().values()))
    assert saved_format(tmp_path / "student") == "state_dict" and not has_tokenizer(tmp_path / "student")


def test_saving_a_cnn_does_not_import_the_transformers_modeling_code():
    """A CNN run has ``transformers`` imported lazily (torchmetrics does); asking it for ``PreTrainedModel`` would
    import its modeling code (~0.25 s of CPU a process) only to learn that the student is not one."""
    code = ("import sys, tempfile, pathlib, torch, transformers\n"
            "from entrenar_bench.models.saving import save_student, _is_hugging_face\n"
            "model = torch.nn.Linear(2, 2)\n"
            "save_student(model, pathlib.Path(tempfile.mkdtemp()) / 'student')\n"
            "assert not _is_hugging_face(model)\n"
            "assert 'transformers.modeling_utils' not in sys.modules, 'imported'\n"
            "from transformers import LlamaConfig, LlamaForCausalLM\n"
            "tiny = LlamaForCausalLM(LlamaConfig(vocab_size=8, hidden_size=8, intermediate_size=8, num_hidden_layers=1,"
            " num_attention_heads=1, num_key_value_heads=1))\n"
            "assert _is_hugging_face(tiny)\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=300)
