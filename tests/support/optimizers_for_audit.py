"""Small optimizers for the audit tests: correct ones and ones with planted slips, each from its update rule.

Plain torch.optim.Optimizer subclasses written independently of optfilters.
The audit tests load this file by path (``optimizers_for_audit.py:Class``).
"""

from __future__ import annotations

import torch


class _Base(torch.optim.Optimizer):
    def _params(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    yield group, p, p.grad, self.state[p]


class Signum(_Base):
    """signSGD with EMA momentum (Bernstein et al. 2018): m = beta m + (1 - beta) g, update sign(m)."""

    def __init__(self, params, lr=1e-3, momentum=0.9):
        super().__init__(params, {"lr": lr, "momentum": momentum})

    @torch.no_grad()
    def step(self, closure=None):
        for group, p, g, state in self._params():
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = torch.zeros_like(p)
            buf = state["momentum_buffer"]
            buf.mul_(group["momentum"]).add_(g, alpha=1.0 - group["momentum"])
            p.add_(torch.sign(buf), alpha=-group["lr"])


class SignumReset(_Base):
    """Signum with a slip: the momentum buffer is re-created at every step, so the momentum does nothing."""

    def __init__(self, params, lr=1e-3, momentum=0.9):
        super().__init__(params, {"lr": lr, "momentum": momentum})

    @torch.no_grad()
    def step(self, closure=None):
        for group, p, g, state in self._params():
            state["momentum_buffer"] = torch.zeros_like(p)  # the slip: reset every step
            buf = state["momentum_buffer"]
            buf.mul_(group["momentum"]).add_(g, alpha=1.0 - group["momentum"])
            p.add_(torch.sign(buf), alpha=-group["lr"])


class _AdamLike(_Base):
    def __init__(self, params, lr=1e-3, betas=(0.9, 0.99), eps=1e-8):
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    def first_moment(self, m, g, beta1):
        return m.mul_(beta1).add_(g, alpha=1.0 - beta1)

    def correction(self, beta1, t):
        return 1.0 - beta1**t

    @torch.no_grad()
    def step(self, closure=None):
        for group, p, g, state in self._params():
            beta1, beta2 = group["betas"]
            if not state:
                state["step"] = 0
                state["exp_avg"] = torch.zeros_like(p)
                state["exp_avg_sq"] = torch.zeros_like(p)
            state["step"] += 1
            t = state["step"]
            m = self.first_moment(state["exp_avg"], g, beta1)
            v = state["exp_avg_sq"].mul_(beta2).addcmul_(g, g, value=1.0 - beta2)
            denom = (v / (1.0 - beta2**t)).sqrt_().add_(group["eps"])
            p.addcdiv_(m, denom, value=-group["lr"] / self.correction(beta1, t))


class AdamLike(_AdamLike):
    """Adam written out (betas (0.9, 0.99)): bias-corrected EMAs, update m_hat / (sqrt(v_hat) + eps)."""


class GramsSlip(_AdamLike):
    """The Grams-like slip: the first moment written with the complement weight, m = (1 - beta1) m + beta1 g.

    Its pole is 1 - beta1 = 0.1 instead of 0.9, and with the bias correction 1 / (1 - beta1^t) its first update
    on a constant gradient is beta1 / (1 - beta1) = 9 times the long-run one.
    """

    def first_moment(self, m, g, beta1):
        return m.mul_(1.0 - beta1).add_(g, alpha=beta1)


class DoubleCorrection(_AdamLike):
    """Adam with the first-moment bias correction applied twice: m / (1 - beta1^t)^2 (first update 10x)."""

    def correction(self, beta1, t):
        return (1.0 - beta1**t) ** 2


class DisabledMomentum(_Base):
    """Heavy-ball momentum whose default momentum is 0 (so the defaults make it plain SGD)."""

    def __init__(self, params, lr=1e-3, momentum=0.0):
        super().__init__(params, {"lr": lr, "momentum": momentum})

    @torch.no_grad()
    def step(self, closure=None):
        for group, p, g, state in self._params():
            buf = state.setdefault("momentum_buffer", torch.zeros_like(p))
            buf.mul_(group["momentum"]).add_(g)
            p.add_(buf, alpha=-group["lr"])


class SumMomentum(_Base):
    """Momentum in sum form: m = beta m + g (DC gain 1 / (1 - beta)), torch SGD's form."""

    def __init__(self, params, lr=1e-3, momentum=0.9):
        super().__init__(params, {"lr": lr, "momentum": momentum})

    @torch.no_grad()
    def step(self, closure=None):
        for group, p, g, state in self._params():
            buf = state.setdefault("momentum_buffer", torch.zeros_like(p))
            buf.mul_(group["momentum"]).add_(g)
            p.add_(buf, alpha=-group["lr"])


class LerpMomentum(_Base):
    """Momentum in lerp (EMA) form: m = beta m + (1 - beta) g (DC gain 1), same pole as SumMomentum."""

    def __init__(self, params, lr=1e-3, momentum=0.9):
        super().__init__(params, {"lr": lr, "momentum": momentum})

    @torch.no_grad()
    def step(self, closure=None):
        for group, p, g, state in self._params():
            buf = state.setdefault("momentum_buffer", torch.zeros_like(p))
            buf.lerp_(g, 1.0 - group["momentum"])
            p.add_(buf, alpha=-group["lr"])


class StalePrevious(_Base):
    """A derivative term whose stored previous gradient is never written back: u = g + (g - g_prev), g_prev = 0."""

    def __init__(self, params, lr=1e-3):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        for group, p, g, state in self._params():
            prev = state.setdefault("previous_grad", torch.zeros_like(p))
            p.add_(g + (g - prev), alpha=-group["lr"])  # the slip: prev.copy_(g) is missing


class NormalisedNoEps(_Base):
    """EMA over the RMS of the gradient with no eps: 0 / 0 on a zero gradient from rest."""

    def __init__(self, params, lr=1e-3, beta=0.9):
        super().__init__(params, {"lr": lr, "beta": beta})

    @torch.no_grad()
    def step(self, closure=None):
        for group, p, g, state in self._params():
            m = state.setdefault("exp_avg", torch.zeros_like(p))
            v = state.setdefault("exp_avg_sq", torch.zeros_like(p))
            m.lerp_(g, 1.0 - group["beta"])
            v.mul_(group["beta"]).addcmul_(g, g, value=1.0 - group["beta"])
            p.addcdiv_(m, v.sqrt(), value=-group["lr"])


class OrthogonalMomentum(_Base):
    """A matrix-only optimizer: EMA momentum, then the polar factor U V^T of the buffer (exact SVD)."""

    def __init__(self, params, lr=1e-3, momentum=0.8):
        super().__init__(params, {"lr": lr, "momentum": momentum})
        for group in self.param_groups:
            for p in group["params"]:
                if p.dim() != 2:
                    raise ValueError(f"OrthogonalMomentum needs 2-D parameters, got shape {tuple(p.shape)}")

    @torch.no_grad()
    def step(self, closure=None):
        for group, p, g, state in self._params():
            buf = state.setdefault("momentum_buffer", torch.zeros_like(p))
            buf.lerp_(g, 1.0 - group["momentum"])
            u, _, vh = torch.linalg.svd(buf, full_matrices=False)
            p.add_(u @ vh, alpha=-group["lr"])


class LazyMomentum(_Base):
    """Momentum for sparse gradients that touches only the present rows: an event-clocked state."""

    def __init__(self, params, lr=1e-3, momentum=0.9):
        super().__init__(params, {"lr": lr, "momentum": momentum})

    @torch.no_grad()
    def step(self, closure=None):
        for group, p, g, state in self._params():
            if not g.is_sparse:
                raise RuntimeError("LazyMomentum needs sparse gradients")
            g = g.coalesce()
            index, values = g.indices()[0], g.values()
            buf = state.setdefault("momentum_buffer", torch.zeros_like(p))
            buf[index] = buf[index] * group["momentum"] + values
            p[index] -= group["lr"] * buf[index]


class NeedsBase(torch.optim.Optimizer):
    """A wrapper that needs a base optimizer (like Lookahead): it cannot be built from defaults."""

    def __init__(self, params, base_optimizer, k=5):
        super().__init__(params, {"k": k})
        self.base = base_optimizer

    def step(self, closure=None):
        return self.base.step(closure)
