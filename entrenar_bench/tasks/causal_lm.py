"""Causal language models: next-token targets, per-token logits (B, T, V) under a target mask.

A batch is ``(input_ids, mask, index)`` (``data/text.py``); position t predicts token t+1 where token t+1 is a
target. Models are Hugging Face causal LMs (``models/causal_lm.py``); hidden states and attention maps come
from their own ``output_hidden_states`` / ``output_attentions``. Held-out metrics, token means over the target
mask: ``loss`` (cross-entropy, the primary one, lower is better), ``perplexity = exp(loss)``, ``accuracy``
(next-token top-1); with a teacher, ``teacher_kl = KL(p_teacher ‖ q_student)`` at T = 1; where the data's true
distribution is known, ``truth_kl = KL(P ‖ q_student)`` and ``bayes_accuracy``, the top-1 accuracy of
``argmax P`` (the ceiling).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MeanMetric, MetricCollection

from entrenar_bench.distill import losses
from entrenar_bench.distill.features import TokenAttentionTransfer, TokenLayerMatching
from entrenar_bench.distill.padded_vocab import padded_rows, shared_logits
from entrenar_bench.models.causal_lm import attention_and_mlp_projections, use_eager_attention
from entrenar_bench.distill.objective import ModelOutputs
from entrenar_bench.distill.settings import Decoding
from entrenar_bench.tasks.base import Batch, MetricSpec, Task, register
from entrenar_bench.tasks.baselines import lm_baselines
from entrenar_bench.tasks.generation import continuation_mask, continue_prefixes, prefix_lengths
from entrenar_bench.tasks.responses import rouge_l


def next_token_targets(input_ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(targets, target_mask)`` aligned with the logits: position t predicts token t+1, and counts
    where token t+1 is a target; the last position predicts nothing."""
    targets = torch.roll(input_ids, -1, dims=1)
    target_mask = torch.roll(mask.bool(), -1, dims=1)
    target_mask[:, -1] = False
    return targets, target_mask


def source_mask(target_mask: torch.Tensor) -> torch.Tensor:
    """The data's mask (token t is a target) back from :func:`next_token_targets`' ``target_mask`` (position
    t predicts a target): the inverse, as a row's first token is never a target."""
    mask = torch.roll(target_mask, 1, dims=1)
    mask[:, 0] = False
    return mask


@register
class CausalLMTask(Task):
    name = "causal_lm"
    primary_metric = MetricSpec("loss", lower_is_better=True)
    recorded_metrics = (  # held-out next-token metrics, then those of the model's own samples and responses
        MetricSpec("accuracy"), MetricSpec("loss", lower_is_better=True),
        MetricSpec("perplexity", lower_is_better=True),
        MetricSpec("teacher_kl", lower_is_better=True), MetricSpec("truth_kl", lower_is_better=True),
        MetricSpec("bayes_accuracy"), MetricSpec("sample_truth_kl", lower_is_better=True),
        MetricSpec("sample_invalid", lower_is_better=True),  # the share of tokens the source gives probability 0
        MetricSpec("rouge_l"))
    evaluates_teacher = True
    generates = True
    sample_rows = 256  # test prefixes whose sampled continuations measure a model's own samples
    rouge_pairs = 16   # prompt/response pairs per split whose greedy responses ROUGE-L scores

    def batch(self, batch: Sequence[Any]) -> Batch:
        input_ids, mask, index = batch
        targets, target_mask = next_token_targets(input_ids, mask)
        return Batch(input_ids, targets, target_mask, index)

    @property
    def eos(self) -> int | None:
        """The data's end-of-sequence id (its tokenizer's); None where it has none (generated data)."""
        tok = getattr(self.datamodule, "loaded_tokenizer", None)
        return None if tok is None else tok.eos_token_id

    def split_masks(self, split: str) -> torch.Tensor:
        """A split's target masks in index order (the student's subset for ``train``), as ``split_inputs``."""
        return self.datamodule.splits[split].tensors[1][:len(self.split_inputs(split))]

    def prefixes(self, mask: torch.Tensor, prompt_tokens: int) -> torch.Tensor:
        """Each row's prefix length (``generation.prefix_lengths``): its first pair's prompt, where the data has a
        tokenizer and the row a pair, else ``prompt_tokens``."""
        return prefix_lengths(mask, prompt_tokens, pairs=self.eos is not None)

    @torch.no_grad()
    def continuations(self, model: nn.Module, input_ids: torch.Tensor, mask: torch.Tensor, settings: Any,
                      decoding: Decoding) -> Batch:
        """Rows ``input_ids`` (target ``mask``, the data's layout) with their prefixes continued by ``model``
        (``tasks/generation.py``): a batch whose targets are the generated tokens (the prefix is context only)."""
        prefixes = self.prefixes(mask.cpu(), settings.prompt_tokens)
        sequences = continue_prefixes(model, input_ids, prefixes, settings.new_tokens, decoding, self.eos,
                                      padded_rows(model, self.vocab_size))
        return self.generated_batch(sequences, prefixes, settings.new_tokens)

    def own_samples(self, model: nn.Module, batch: Batch, settings: Any) -> Batch:
        """An on-policy batch: ``batch``'s prefixes continued by ``model``'s own samples (``settings.sampling``)."""
        return self.continuations(model, batch.inputs, source_mask(batch.mask), settings, settings.sampling)

    def generated_batch(self, sequences: torch.Tensor, prefixes: torch.Tensor, new_tokens: int,
                        index: torch.Tensor | None = None) -> Batch:
        """A batch of continued rows whose targets are the generated tokens (``generation.continuation_mask``)."""
        mask = continuation_mask(sequences, prefixes, new_tokens, self.eos)
        targets, target_mask = next_token_targets(sequences, mask)
        return Batch(sequences, targets, target_mask, index)

    def decoded_split(self, model: nn.Module, split: str, settings: Any, decoding: Decoding,
                      device: torch.device) -> torch.Tensor:
        """(N, L) ids: every row of ``split`` (in index order) with its prefix continued by ``model``."""
        rows, masks = self.split_inputs(split), self.split_masks(split)
        return torch.cat([self.continuations(model, ids.to(device), mask, settings, decoding).inputs.cpu()
                          for ids, mask in zip(rows.split(self.store_chunk), masks.split(self.store_chunk))])

    def sequence_loader(self, sequences: torch.Tensor, settings: Any) -> Any:
        """Training batches over the teacher's decoded training rows (sequence-level KD, ``decoded_split``),
        shuffled as the student's own data; the targets are the decoded tokens."""
        from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset

        prefixes = self.prefixes(self.split_masks("train"), settings.prompt_tokens)
        mask = continuation_mask(sequences, prefixes, settings.new_tokens, self.eos)
        dataset = TensorDataset(sequences, mask, torch.arange(len(sequences)))
        batches = BatchSampler(RandomSampler(dataset), self.datamodule.batch_size, drop_last=False)
        return DataLoader(dataset, batch_size=None, sampler=batches)

    @torch.no_grad()
    def sample_metrics(self, model: nn.Module, settings: Any, seed: int) -> dict[str, float]:
        """On sequences ``model`` samples itself from test prefixes (the quality of its own generations, which
        fixed text does not show), where the true distribution P is known: ``sample_truth_kl``, the mean over
        generated positions of ``KL(P(·|x_<t) ‖ q(·|x_<t))`` — ``truth_kl`` in the states the model's own samples
        visit (their gap is the exposure bias) — and ``sample_invalid``, the share of generated tokens the source
        gives probability 0. The random generators are left as they were."""
        responses = self.response_metrics(model)
        if self.datamodule.reference is None:
            return responses
        device = next(model.parameters()).device
        inputs = self.datamodule.split_inputs("test")[:self.sample_rows].to(device)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            batch = self.continuations(model, inputs, self.split_masks("test")[:self.sample_rows], settings,
                                       settings.sampling)
        logits = model(input_ids=batch.inputs, use_cache=False).logits
        truth = self.datamodule.reference(batch.inputs.cpu()).to(device)
        impossible = truth.gather(-1, batch.targets[..., None])[..., 0] == 0
        return {**responses, "sample_truth_kl": float(losses.kl_from_probs(truth, logits, batch.mask)),
                "sample_invalid": float(losses.masked_token_mean(impossible.float(), batch.mask))}

    def response_metrics(self, model: nn.Module) -> dict[str, float]:
        """``val_rouge_l`` and ``rouge_l`` (``tasks/responses.py``) where the data holds prompt/response pairs."""
        if getattr(self.datamodule, "loaded_tokenizer", None) is None:
            return {}
        scores = {f"{prefix}rouge_l": rouge_l(model, self.datamodule, split, self.rouge_pairs)
                  for prefix, split in (("val_", "val"), ("", "test"))}
        return {name: score for name, score in scores.items() if score is not None}

    @torch.no_grad()
    def generations(self, model: nn.Module, prompt_tokens: int, count: int = 4, new_tokens: int = 32) -> list[dict]:
        """Greedy continuations of the first ``count`` test rows' prefixes (a pair's prompt, else the first
        ``prompt_tokens`` tokens), generated as one batch (``generation.continue_prefixes``): what a reader looks at
        first (ids, and text where the data has a tokenizer)."""
        device = next(model.parameters()).device
        prefixes = self.prefixes(self.split_masks("test")[:count], prompt_tokens)
        rows = self.datamodule.split_inputs("test")[:count].to(device)
        rows = F.pad(rows, (0, max(0, int(prefixes.max()) + new_tokens - rows.shape[1])))  # room for new_tokens
        sequences = continue_prefixes(model, rows, prefixes, new_tokens, Decoding("greedy"), self.eos,
                                      padded_rows(model, self.vocab_size))
        written = continuation_mask(sequences, prefixes, new_tokens, self.eos)
        samples = []
        for row, length, mask in zip(sequences, prefixes.tolist(), written):
            prompt, completion = row[:length].tolist(), row[mask].tolist()
            samples.append({"prompt_ids": prompt, "completion_ids": completion,
                            "prompt": self.datamodule.decode(prompt), "completion": self.datamodule.decode(completion)})
        return samples

    def stored_splits(self, cached: bool) -> tuple[str, ...]:
        return ("train", "val", "test") if cached else ("val", "test")

    @property
    def vocab_size(self) -> int:
        return self.datamodule.vocab_size

    def positions_per_row(self, inputs: torch.Tensor) -> int:
        return inputs.shape[1]

    def split_inputs(self, split: str) -> torch.Tensor:
        return self.datamodule.split_inputs(split)

    def next_ids(self, split: str) -> torch.Tensor:
        """Each row's token t+1 at position t, −1 at its last (every causal LM store keeps them, so that a run whose
        student reads another tokenization of the same rows reuses it: ``tasks/causal_lm_corpus_cross.py``)."""
        return F.pad(self.split_inputs(split)[:, 1:], (0, 1), value=-1)

    def forward(self, model: nn.Module, inputs: torch.Tensor, hidden: bool = False,
                attentions: bool = False) -> ModelOutputs:
        out = model(input_ids=inputs, output_hidden_states=hidden, output_attentions=attentions, use_cache=False)
        return ModelOutputs(out.logits, (out.hidden_states or ())[1:], out.attentions or ())  # embeddings excluded

    def prepare_models(self, settings: Any, student: nn.Module, teacher: nn.Module | None) -> None:
        if settings.needs_attentions:
            use_eager_attention(student, teacher)

    def feature_terms(self, names: Sequence[str], student: nn.Module, teacher: nn.Module | None):
        s, t = student.config, teacher.config
        terms = {"layers": lambda: TokenLayerMatching(s.num_hidden_layers, t.num_hidden_layers, s.hidden_size,
                                                      t.hidden_size),
                 "attention": lambda: TokenAttentionTransfer(s.num_hidden_layers, t.num_hidden_layers)}
        return {name: terms[name]() for name in names}

    def lora_targets(self, model: nn.Module) -> list[str]:
        return attention_and_mlp_projections(model)

    def make_metrics(self, with_teacher: bool) -> MetricCollection:
        names = ["accuracy", "loss"]
        names += (["teacher_kl"] * with_teacher
                  + ["truth_kl", "bayes_accuracy"] * (self.datamodule.reference is not None))
        return MetricCollection({name: MeanMetric() for name in names})

    def update_metrics(self, metrics: MetricCollection, logits: torch.Tensor, batch: Batch,
                       teacher_logits=None) -> None:
        targets, target_mask = batch.targets, batch.mask
        correct, count = losses.token_top1_matches(logits, targets, target_mask)
        weight = count.float()
        metrics["accuracy"].update(correct / count.clamp(min=1), weight)
        metrics["loss"].update(losses.cross_entropy(logits, targets, target_mask), weight)
        if "teacher_kl" in metrics:
            student, teacher = shared_logits(logits, teacher_logits, self.vocab_size)  # padded vocabularies
            metrics["teacher_kl"].update(losses.forward_kl(student, teacher, target_mask), weight)
        if self.datamodule.reference is not None:
            truth = self.datamodule.reference(batch.inputs)
            metrics["truth_kl"].update(losses.kl_from_probs(truth, logits, target_mask), weight)
            bayes, _ = losses.token_top1_matches(truth, targets, target_mask)
            metrics["bayes_accuracy"].update(bayes / count.clamp(min=1), weight)

    def results(self, metrics: MetricCollection) -> dict[str, torch.Tensor]:
        values = metrics.compute()
        values["perplexity"] = values["loss"].exp()
        return values

    def record(self, train_targets: int, time_s: float) -> dict[str, Any]:
        """``tokens_per_s``: target tokens of the training steps per second of training; ``baselines``: the
        uniform and unigram held-out cross-entropies (``tasks/baselines.py``)."""
        splits = {name: data.tensors[:2] for name, data in self.datamodule.splits.items()}
        return {"tokens_per_s": train_targets / time_s if time_s else None,
                "baselines": lm_baselines(splits, self.vocab_size)}

    def tokens_per_row(self, loader: Any) -> float:
        """Mean target tokens of a training row of ``loader`` (its dataset's ``(ids, mask, index)``)."""
        mask = loader.dataset.tensors[1]
        return float(mask.sum()) / max(1, len(mask))
