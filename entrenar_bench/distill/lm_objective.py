"""The token-level distillation objective for causal language models.

``loss = (1−α)·CE + α·D(p ‖ q) + layer_weight·PKD + attention_weight·MiniLM``

each a mean over the target tokens of the mask: ``CE`` the next-token cross-entropy, ``D`` the
divergence ``distill.logit_loss`` (``losses.py``: kl, reverse_kl, jsd, skew_kl, skew_reverse_kl,
tvd, mse), ``PKD`` the MSE between each student layer's hidden states (B, T, D_s), projected by a
learned linear map, and its mapped teacher layer's (B, T, D_t), and ``MiniLM`` the KL between mapped
layers' head-averaged attention distributions. Layers are mapped as for images (``uniform_layer_map``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from entrenar_bench.distill import losses
from entrenar_bench.distill.objective import uniform_layer_map
from entrenar_bench.distill.settings import DistillSettings


def next_token_targets(input_ids: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(targets, target_mask)`` aligned with the logits: position t predicts token t+1, and counts
    where token t+1 is a target; the last position predicts nothing."""
    targets = torch.roll(input_ids, -1, dims=1)
    target_mask = torch.roll(mask.bool(), -1, dims=1)
    target_mask[:, -1] = False
    return targets, target_mask


def token_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy in float32, mean over the mask's tokens."""
    per_token = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), reduction="none")
    return losses.masked_token_mean(per_token.view_as(targets), mask)


class TokenDistillationObjective(nn.Module):
    """Builds the loss from settings; owns the hidden-state projections (trained with the student).

    ``student_config``/``teacher_config``: the models' configs (``num_hidden_layers``, ``hidden_size``),
    needed only for layer matching and attention transfer.
    """

    def __init__(self, settings: DistillSettings, student_config=None, teacher_config=None):
        super().__init__()
        self.settings = settings
        self.layer_map: list[int] = []
        self.attention_map: list[tuple[int, int]] = []
        self.projections = nn.ModuleList()
        if settings.needs_hidden and (student_config is None or teacher_config is None):
            raise ValueError("layer matching and attention transfer need a teacher and a student model")
        if settings.needs_hidden:
            mapped = uniform_layer_map(student_config.num_hidden_layers, teacher_config.num_hidden_layers)
        if settings.layer_weight > 0:
            self.layer_map = mapped
            self.projections.extend(nn.Linear(student_config.hidden_size, teacher_config.hidden_size) for _ in mapped)
        if settings.attention_weight > 0:
            self.attention_map = list(enumerate(mapped))

    def forward(
        self,
        student_logits: torch.Tensor,
        targets: torch.Tensor,
        mask: torch.Tensor,
        teacher_logits: torch.Tensor | None = None,
        student_hidden: Sequence[torch.Tensor] = (),
        teacher_hidden: Sequence[torch.Tensor] = (),
        student_attentions: Sequence[torch.Tensor] = (),
        teacher_attentions: Sequence[torch.Tensor] = (),
    ) -> dict[str, torch.Tensor]:
        """Every term and their weighted sum under ``"loss"``. Hidden states: one (B, T, D) per layer
        (embeddings excluded); attentions: one (B, H, T, T) per layer."""
        s = self.settings
        terms = {"ce": token_cross_entropy(student_logits, targets, mask)}
        loss = terms["ce"]
        if s.logit_loss != "none" and s.alpha > 0:
            terms["kd"] = losses.settings_divergence(s, student_logits, teacher_logits, mask)
            loss = (1 - s.alpha) * terms["ce"] + s.alpha * terms["kd"]
        if self.layer_map:
            pairs = [(proj(student_hidden[i]), teacher_hidden[j])
                     for i, (proj, j) in enumerate(zip(self.projections, self.layer_map))]
            terms["layers"] = losses.hidden_state_mse(pairs, mask)
            loss = loss + s.layer_weight * terms["layers"]
        if self.attention_map:
            pairs = [(student_attentions[i], teacher_attentions[j]) for i, j in self.attention_map]
            terms["attention"] = losses.attention_kl(pairs, mask)
            loss = loss + s.attention_weight * terms["attention"]
        terms["loss"] = loss
        return terms
