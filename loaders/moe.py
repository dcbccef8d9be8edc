"""DyLoRA-MoE at inference: LoRA experts over one base model, routed as the original did.

The gate sees the base model's last hidden state (adapters off), its logits are averaged over the
(unpadded) sequence, and each example goes to its top-1 expert (the original's inference and
``generate`` path) or, with ``routing="dense"``, to all experts weighted by
``softmax(gate / temperature)``.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers.modeling_outputs import CausalLMOutputWithPast

from loaders.context import ROUTING_MODES


def expert_name(i: int) -> str:
    """PEFT adapter name of expert ``i``."""
    return f"expert_{i}"


class Router(nn.Module):
    """``gate = Linear(hidden, num_experts)``, named as in the saved state dict (``router.gate.*``)."""

    def __init__(self, hidden: int, num_experts: int) -> None:
        super().__init__()
        self.gate = nn.Linear(hidden, num_experts)


class DyLoRAMoEModel(nn.Module):
    """A PEFT model holding adapters ``expert_0..expert_{E-1}`` plus the router gate."""

    def __init__(
        self,
        foundation_model: nn.Module,
        num_experts: int,
        hidden_size: int,
        routing: str = "top1",
        temperature: float = 2.0,
    ) -> None:
        super().__init__()
        if routing not in ROUTING_MODES:
            raise ValueError(f"routing must be one of {ROUTING_MODES}, got {routing!r}")
        self.foundation_model = foundation_model
        self.router = Router(hidden_size, num_experts)
        self.num_experts = num_experts
        self.routing = routing
        self.temperature = temperature
        self.config = getattr(foundation_model, "config", None)

    def get_input_embeddings(self) -> nn.Module:
        """The base model's input embedding."""
        return self.foundation_model.get_input_embeddings()

    @torch.no_grad()
    def gate_logits(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``[batch, E]`` gate logits of the base hidden state, averaged over the sequence."""
        with self.foundation_model.disable_adapter():
            out = self.foundation_model(
                input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True
            )
        h = out.hidden_states[-1]
        g = self.router.gate(h.to(self.router.gate.weight.dtype))
        if attention_mask is None:
            return g.mean(dim=1)
        m = attention_mask.to(g.dtype).unsqueeze(-1)
        return (g * m).sum(dim=1) / m.sum(dim=1).clamp_min(1.0)

    def routing_weights(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``[batch, E]`` expert weights: one-hot top-1, or dense softmax with temperature."""
        g = self.gate_logits(input_ids, attention_mask)
        if self.routing == "dense":
            return torch.softmax(g / self.temperature, dim=-1)
        return nn.functional.one_hot(g.argmax(dim=-1), self.num_experts).to(g.dtype)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs
    ) -> CausalLMOutputWithPast:
        """``sum_i w_i * logits(expert i)`` over the experts any example uses."""
        w = self.routing_weights(input_ids, attention_mask)
        total = None
        for i in range(self.num_experts):
            if not bool((w[:, i] != 0).any()):
                continue
            self.foundation_model.set_adapter(expert_name(i))
            li = self.foundation_model(input_ids=input_ids, attention_mask=attention_mask).logits
            part = w[:, i, None, None].to(li.dtype) * li
            total = part if total is None else total + part
        return CausalLMOutputWithPast(logits=total)

    @torch.no_grad()
    def generate(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **kwargs
    ):
        """Generate with the argmax expert of the (first) prompt, as the original did."""
        best = int(self.gate_logits(input_ids, attention_mask)[0].argmax())
        self.foundation_model.set_adapter(expert_name(best))
        return self.foundation_model.generate(
            input_ids=input_ids, attention_mask=attention_mask, **kwargs
        )
