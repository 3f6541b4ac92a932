"""Optimizers: torch's AdamW, fused where it can be, and a plain AdamW step for small fits.

``torch.optim`` imports ``torch._dynamo`` the first time an optimizer is
built (seconds in a fresh process). The few-parameter fits of the imputer
need none of what that buys; this class applies the same update as
``torch.optim.AdamW`` (its single-tensor path) and offers the two methods
the training loop calls, ``zero_grad`` and ``step``.
"""

import math

import torch

__all__ = ["AdamW", "fused_adamw"]


def fused_adamw(params, lr, weight_decay):
    """``torch.optim.AdamW`` over ``params`` (tensors or groups), fused where torch can."""
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


class AdamW:
    """AdamW (decoupled weight decay) over a list of parameters."""

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.state = [(torch.zeros_like(p), torch.zeros_like(p)) for p in self.params]
        self.num_updates = 0

    def zero_grad(self, set_to_none=True):
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self):
        self.num_updates += 1
        beta1, beta2 = self.betas
        bias1 = 1 - beta1**self.num_updates
        bias2_sqrt = math.sqrt(1 - beta2**self.num_updates)
        step_size = self.lr / bias1
        for p, (exp_avg, exp_avg_sq) in zip(self.params, self.state, strict=True):
            if p.grad is None:
                continue
            grad = p.grad
            p.mul_(1 - self.lr * self.weight_decay)
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            denom = (exp_avg_sq.sqrt() / bias2_sqrt).add_(self.eps)
            p.addcdiv_(exp_avg, denom, value=-step_size)
