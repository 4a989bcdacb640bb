"""Optimizers written for the identification tests, each with a known filter.

They are plain torch.optim.Optimizer subclasses (or duck-typed), written from
their update equations, independently of optfilters.
"""

from __future__ import annotations

import math
from typing import Any

import torch


class _Base(torch.optim.Optimizer):
    def _params(self) -> Any:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    yield group, p, p.grad, self.state[p]


class PID(torch.optim.Optimizer):
    """An et al.'s PID optimizer: u = kp g + ki I + kd D, from rest.

    I = beta I + (1 - d) g;  D = beta D + (1 - beta) (g - g_prev).  With
    ``buggy=True`` the stored previous gradient is never written back (it stays
    0), so D is an EMA of g: it integrates instead of differencing.
    """

    def __init__(self, params, lr=1e-3, kp=1.0, ki=5.0, kd=10.0, momentum=0.9, dampening=0.0, buggy=False):
        defaults = {"lr": lr, "kp": kp, "ki": ki, "kd": kd, "momentum": momentum, "dampening": dampening}
        super().__init__(params, defaults)
        self.buggy = buggy

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            beta, d = group["momentum"], group["dampening"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:
                    state["I"] = torch.zeros_like(p)
                    state["D"] = torch.zeros_like(p)
                    state["g_prev"] = torch.zeros_like(p)
                integral = state["I"].mul_(beta).add_(g, alpha=1.0 - d)
                derivative = state["D"].mul_(beta).add_(g - state["g_prev"], alpha=1.0 - beta)
                if not self.buggy:
                    state["g_prev"].copy_(g)
                u = group["kp"] * g + group["ki"] * integral + group["kd"] * derivative
                p.add_(u, alpha=-group["lr"])


class CascadedEma(_Base):
    """Two EMAs in series: m1 = b1 m1 + (1 - b1) g; m2 = b2 m2 + (1 - b2) m1; update m2."""

    def __init__(self, params, lr=1e-3, beta1=0.8, beta2=0.5):
        super().__init__(params, {"lr": lr, "beta1": beta1, "beta2": beta2})

    @torch.no_grad()
    def step(self, closure=None):
        for group, p, g, state in self._params():
            if not state:
                state["m1"] = torch.zeros_like(p)
                state["m2"] = torch.zeros_like(p)
            m1 = state["m1"].mul_(group["beta1"]).add_(g, alpha=1.0 - group["beta1"])
            m2 = state["m2"].mul_(group["beta2"]).add_(m1, alpha=1.0 - group["beta2"])
            p.add_(m2, alpha=-group["lr"])


class Resonator(_Base):
    """A resonant second-order filter: y_t = 2 r cos(w) y_{t-1} - r^2 y_{t-2} + g_t; update y."""

    def __init__(self, params, lr=1e-3, radius=0.95, omega=0.3):
        super().__init__(params, {"lr": lr, "radius": radius, "omega": omega})

    @torch.no_grad()
    def step(self, closure=None):
        for group, p, g, state in self._params():
            if not state:
                state["y1"] = torch.zeros_like(p)
                state["y2"] = torch.zeros_like(p)
            r, w = group["radius"], group["omega"]
            y = 2.0 * r * math.cos(w) * state["y1"] - r * r * state["y2"] + g
            state["y2"].copy_(state["y1"])
            state["y1"].copy_(y)
            p.add_(y, alpha=-group["lr"])


class ClosureMomentum(_Base):
    """Heavy-ball momentum whose step() insists on a closure (like LBFGS)."""

    def __init__(self, params, lr=1e-3, momentum=0.7):
        super().__init__(params, {"lr": lr, "momentum": momentum})

    def step(self, closure=None):
        if closure is None:
            raise RuntimeError("ClosureMomentum requires a closure")
        with torch.enable_grad():
            closure()
        with torch.no_grad():
            for group, p, g, state in self._params():
                buf = state.setdefault("buf", torch.zeros_like(p))
                buf.mul_(group["momentum"]).add_(g)
                p.add_(buf, alpha=-group["lr"])


class Exploding(_Base):
    """An optimizer whose step() always fails."""

    def __init__(self, params, lr=1e-3):
        super().__init__(params, {"lr": lr})

    def step(self, closure=None):
        raise RuntimeError("kaboom in step")


class SignMomentum(_Base):
    """signSGD with momentum: u = sign(buf), buf = mu buf + g."""

    def __init__(self, params, lr=1e-3, momentum=0.9):
        super().__init__(params, {"lr": lr, "momentum": momentum})

    @torch.no_grad()
    def step(self, closure=None):
        for group, p, g, state in self._params():
            buf = state.setdefault("buf", torch.zeros_like(p))
            buf.mul_(group["momentum"]).add_(g)
            p.add_(torch.sign(buf), alpha=-group["lr"])


class HiddenCounterEma(_Base):
    """A bias-corrected EMA whose step counter lives on the instance, outside state_dict()."""

    def __init__(self, params, lr=1e-3, beta=0.5):
        super().__init__(params, {"lr": lr, "beta": beta})
        self.t = 0

    @torch.no_grad()
    def step(self, closure=None):
        self.t += 1
        for group, p, g, state in self._params():
            m = state.setdefault("m", torch.zeros_like(p))
            m.mul_(group["beta"]).add_(g, alpha=1.0 - group["beta"])
            p.add_(m, alpha=-group["lr"] / (1.0 - group["beta"] ** self.t))


class Accumulator(_Base):
    """Plain integrator: u_t = sum of all gradients so far (b = [1], a = [1, -1])."""

    def __init__(self, params, lr=1e-3):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group, p, g, state in self._params():
            total = state.setdefault("sum", torch.zeros_like(p))
            total.add_(g)
            p.add_(total, alpha=-group["lr"])


class DuckSGD:
    """Not a torch.optim.Optimizer: plain SGD with a step() method."""

    def __init__(self, params, lr=0.5):
        self.params = list(params)
        self.lr = lr

    @torch.no_grad()
    def step(self):
        for p in self.params:
            p.add_(p.grad, alpha=-self.lr)


def not_a_class(params, lr=1.0):
    """A factory function (identify accepts callables given as objects, not dotted paths to them)."""
    return torch.optim.SGD(params, lr=lr, momentum=0.25)
