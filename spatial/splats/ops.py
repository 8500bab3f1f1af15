"""Editing the Gaussians and their Adam state together: keep, duplicate, append, reset.

Every change of the Gaussian count goes through `edit`, which rewrites each parameter and the
matching optimizer moments with the same function, so the two never disagree in length.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def edit(params: torch.nn.ParameterDict, optimizers: dict[str, torch.optim.Optimizer],
         fn: Callable[[str, Tensor], Tensor], state_fn: Callable[[str, Tensor], Tensor] | None = None) -> None:
    """Replace each parameter p by fn(name, p) and each Adam moment m by state_fn(name, m)."""
    state_fn = state_fn or fn
    for name in list(params.keys()):
        old = params[name]
        new = torch.nn.Parameter(fn(name, old.detach()), requires_grad=old.requires_grad)
        params[name] = new
        optimizer = optimizers.get(name)
        if optimizer is None:
            continue
        state = optimizer.state.pop(old, None)
        if state is not None:
            for key in ("exp_avg", "exp_avg_sq"):
                state[key] = state_fn(name, state[key])
            optimizer.state[new] = state
        optimizer.param_groups[0]["params"] = [new]


def keep(params, optimizers, mask: Tensor) -> None:
    """Keep the Gaussians where `mask [N]` is true."""
    edit(params, optimizers, lambda _, p: p[mask])


def append(params, optimizers, new: dict[str, Tensor]) -> None:
    """Append Gaussians given as raw parameters (Adam moments start at zero for them)."""
    edit(params, optimizers, lambda name, p: torch.cat([p, new[name].to(p)]),
         lambda name, m: torch.cat([m, torch.zeros_like(new[name]).to(m)]))


def set_rows(params, optimizers, index: Tensor, values: dict[str, Tensor]) -> None:
    """Overwrite rows `index` of every parameter with `values[name]` and zero their Adam moments there."""
    def fn(name: str, p: Tensor) -> Tensor:
        p = p.clone()
        p[index] = values[name].to(p)
        return p

    def state_fn(name: str, m: Tensor) -> Tensor:
        m = m.clone()
        m[index] = 0
        return m

    edit(params, optimizers, fn, state_fn)
