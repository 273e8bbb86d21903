"""The teacher's outputs are reduced to their stored form chunk by chunk: the same as reducing them whole."""

import torch
from transformers import LlamaConfig

from entrenar_bench.distill.teacher_targets import TeacherTargets
from entrenar_bench.models.causal_lm import causal_lm
from entrenar_bench.models.teacher_outputs import CHUNK, teacher_targets


def test_chunked_outputs_equal_the_whole():
    torch.manual_seed(0)
    teacher = causal_lm(LlamaConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                                    num_key_value_heads=2), vocab_size=9).eval()
    ids = torch.randint(0, 9, (CHUNK + 7, 5))  # two chunks
    with torch.no_grad():
        whole = torch.cat([teacher(input_ids=part).logits for part in ids.split(CHUNK)])
    cpu = torch.device("cpu")
    exact = teacher_targets(teacher, ids, 0, cpu, "32-true")
    assert exact.is_exact and torch.equal(exact.state["logits"], whole)
    top = teacher_targets(teacher, ids, 3, cpu, "32-true")
    reference = TeacherTargets.top_k(whole, 3)
    assert top.state["vocab_size"] == 9 and all(torch.equal(top.state[k], reference.state[k])
                                                for k in ("top_log_probs", "top_ids"))
