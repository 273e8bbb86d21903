"""Causal LMs from a YAML config or a local directory, and LoRA on their projections."""

import pytest
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf
from peft import LoraConfig, inject_adapter_in_model
from transformers import GPT2Config, LlamaConfig

from conftest import CONF_DIR
from entrenar_bench.errors import ConfigError
from entrenar_bench.models.causal_lm import attention_and_mlp_projections, causal_lm, pretrained_causal_lm
from entrenar_bench.models.networks import count_parameters

TINY = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2)


def test_built_from_the_yaml_config_with_the_data_vocabulary():
    spec = OmegaConf.load(CONF_DIR / "teacher" / "llama_tiny.yaml").model
    model = instantiate(spec, vocab_size=32)
    assert type(model).__name__ == "LlamaForCausalLM" and model.config.vocab_size == 32
    assert (model.config.pad_token_id, model.config.bos_token_id, model.config.eos_token_id) == (None, None, None)
    assert count_parameters(model) == 135_488
    assert model(input_ids=torch.randint(0, 32, (2, 5))).logits.shape == (2, 5, 32)
    gpt2 = causal_lm(GPT2Config(n_embd=16, n_layer=1, n_head=2, n_positions=32), vocab_size=10)
    assert gpt2.config.vocab_size == 10 and attention_and_mlp_projections(gpt2) == ["c_attn", "c_fc", "c_proj"]


def test_loaded_from_a_local_directory(tmp_path):
    saved = causal_lm(LlamaConfig(**TINY), vocab_size=12)
    saved.save_pretrained(tmp_path / "model")
    loaded = pretrained_causal_lm(str(tmp_path / "model"), vocab_size=10)
    ids = torch.randint(0, 10, (1, 6))
    assert torch.equal(saved.eval()(input_ids=ids).logits, loaded.eval()(input_ids=ids).logits)
    with pytest.raises(ValueError, match="fewer than the data's vocabulary"):
        pretrained_causal_lm(str(tmp_path / "model"), vocab_size=13)
    with pytest.raises(ConfigError, match="no such directory .*save_pretrained"):
        pretrained_causal_lm(str(tmp_path / "absent"))


def test_every_lora_rank_of_the_cost_study_trains_far_fewer_parameters_than_full_fine_tuning():
    spec = OmegaConf.load(CONF_DIR / "student" / "llama_base.yaml").model
    full = count_parameters(instantiate(spec, vocab_size=32))
    targets = attention_and_mlp_projections(instantiate(spec, vocab_size=32))
    assert targets == ["down_proj", "gate_proj", "k_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    for r in (8, 16, 32, 64):
        model = inject_adapter_in_model(LoraConfig(r=r, lora_alpha=2 * r, target_modules=targets),
                                        instantiate(spec, vocab_size=32))
        trainable = count_parameters(model, trainable_only=True)
        assert trainable < full / 3, (r, trainable, full)
