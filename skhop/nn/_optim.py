"""Optimizers: torch's fused AdamW kernel called directly, and a plain AdamW step for small fits.

``torch.optim.AdamW(fused=True)`` spends about 150 us of Python a step
(hooks, grouping tensors by device, the scheduler's wrapper) around a
kernel that takes 20 us per parameter group: for the small networks of the
estimators, a good part of a training step. :class:`FusedAdamW` calls the
same kernel on the same state, and :class:`CosineSchedule` runs
``CosineAnnealingLR``'s recursion, so both give torch's numbers bit for bit.

``torch.optim`` imports ``torch._dynamo`` the first time an optimizer is
built (seconds in a fresh process). The few-parameter fits of the imputer
need none of what that buys; :class:`AdamW` applies the same update as
``torch.optim.AdamW`` (its single-tensor path) and offers the two methods
the training loop calls, ``zero_grad`` and ``step``.
"""

import math

import torch

__all__ = ["AdamW", "CosineSchedule", "FusedAdamW", "cosine_schedule", "fused_adamw"]


def fused_adamw(params, lr, weight_decay):
    """AdamW over ``params`` (tensors or groups): :class:`FusedAdamW` where torch has
    the fused kernel for the parameters' device, ``torch.optim.AdamW`` otherwise."""
    params = list(params)
    try:
        return FusedAdamW(params, lr=lr, weight_decay=weight_decay)
    except (RuntimeError, TypeError, ValueError):
        pass
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


def _zero_grad(params, set_to_none):
    for p in params:
        if set_to_none:
            p.grad = None
        elif p.grad is not None:
            p.grad.zero_()


class FusedAdamW:
    """``torch.optim.AdamW(params, lr, weight_decay=weight_decay, fused=True)``, called directly.

    Parameters
    ----------
    params : iterable of Tensor or of dict
        Parameters, or groups ``{"params": [...], "lr": ...}`` (a group
        without ``"lr"`` takes ``lr``).
    lr, weight_decay : float
    betas : (float, float), default=(0.9, 0.999)
    eps : float, default=1e-8

    Attributes
    ----------
    param_groups : list of dict
        ``{"params", "lr", "initial_lr"}`` per group; a schedule sets ``"lr"``.
    """

    def __init__(self, params, lr, weight_decay, betas=(0.9, 0.999), eps=1e-8):
        kernel = getattr(torch, "_fused_adamw_", None)
        if kernel is None:
            raise RuntimeError("this torch has no fused AdamW kernel.")
        params = list(params)
        groups = params if params and isinstance(params[0], dict) else [{"params": params}]
        self.param_groups = []
        for g in groups:
            ps = [p for p in g["params"] if p.requires_grad]
            if any(p.device.type not in ("cpu", "cuda") or not p.is_floating_point() for p in ps):
                raise ValueError("the fused AdamW kernel takes floating CPU or CUDA tensors.")
            glr = float(g.get("lr", lr))
            self.param_groups.append({"params": ps, "lr": glr, "initial_lr": glr})
        self.weight_decay, self.betas, self.eps = float(weight_decay), betas, float(eps)
        self._kernel = kernel
        # torch's state: moments like each parameter, a float32 step count on its device
        self.state = [
            [
                (
                    torch.zeros_like(p, memory_format=torch.preserve_format),
                    torch.zeros_like(p, memory_format=torch.preserve_format),
                    torch.zeros((), dtype=torch.float32, device=p.device),
                )
                for p in g["params"]
            ]
            for g in self.param_groups
        ]

    def zero_grad(self, set_to_none=True):
        _zero_grad([p for g in self.param_groups for p in g["params"]], set_to_none)

    @torch.no_grad()
    def step(self):
        beta1, beta2 = self.betas
        for g, state in zip(self.param_groups, self.state, strict=True):
            live = [(p, s) for p, s in zip(g["params"], state, strict=True) if p.grad is not None]
            if not live:
                continue
            # one call per device and dtype, as torch groups them
            by_kind = {}
            for p, s in live:
                by_kind.setdefault((p.device, p.dtype), []).append((p, s))
            for pairs in by_kind.values():
                steps = [s[2] for _, s in pairs]
                torch._foreach_add_(steps, 1)
                self._kernel(
                    [p for p, _ in pairs],
                    [p.grad for p, _ in pairs],
                    [s[0] for _, s in pairs],
                    [s[1] for _, s in pairs],
                    [],
                    steps,
                    amsgrad=False,
                    lr=g["lr"],
                    beta1=beta1,
                    beta2=beta2,
                    weight_decay=self.weight_decay,
                    eps=self.eps,
                    maximize=False,
                    grad_scale=None,
                    found_inf=None,
                )


class CosineSchedule:
    """``CosineAnnealingLR(optimizer, T_max)`` with ``eta_min=0``, by its own recursion.

    :meth:`step` once an epoch, after the epoch's updates.
    """

    def __init__(self, optimizer, T_max):
        self.optimizer, self.T_max, self.last_epoch = optimizer, int(T_max), 0

    def step(self):
        self.last_epoch += 1
        e, T = self.last_epoch, self.T_max
        for g in self.optimizer.param_groups:
            if (e - 1 - T) % (2 * T) == 0:
                g["lr"] = g["lr"] + g["initial_lr"] * (1 - math.cos(math.pi / T)) / 2
            else:
                g["lr"] = (
                    (1 + math.cos(math.pi * e / T))
                    / (1 + math.cos(math.pi * (e - 1) / T))
                    * g["lr"]
                )


def cosine_schedule(optimizer, T_max):
    """Cosine annealing of ``optimizer``'s rates to 0 over ``T_max`` epochs (``step`` per epoch):
    :class:`CosineSchedule` for a :class:`FusedAdamW`, ``CosineAnnealingLR`` otherwise."""
    if isinstance(optimizer, FusedAdamW):
        return CosineSchedule(optimizer, T_max)
    return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=T_max)


class AdamW:
    """AdamW (decoupled weight decay) over a list of parameters."""

    def __init__(self, params, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.state = [(torch.zeros_like(p), torch.zeros_like(p)) for p in self.params]
        self.num_updates = 0

    def zero_grad(self, set_to_none=True):
        _zero_grad(self.params, set_to_none)

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
