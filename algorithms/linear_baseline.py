"""MAML's linear feature baseline (Duan et al. 2016), fitted per task by ridge regression.

Features of an observation o at step t of its episode: [o, o^2, t/100, (t/100)^2, (t/100)^3, 1]
(size 2*obs_dim + 4). The weights solve (X^T X + reg I) w = X^T y with y the discounted returns,
by ``torch.linalg.lstsq`` (the old ``torch.lstsq`` is gone, pytorch-maml-rl #72), in float64.

Robustness (pytorch-maml-rl #48/#49): padded steps (mask 0, after an episode ended) get zero
features and targets, so they do not enter the fit; when the solution is not finite the ridge
coefficient grows x10, up to ``max_tries`` times, then a RuntimeError says so.

Shapes: obs [*B, T, F, d], returns/mask [*B, T, F] — one independent fit per leading index (a
task), over its F episodes of length <= T. Everything is detached: the baseline is a constant
for the policy gradient (also when the returns depend on a meta-learned reward weight).
"""
from __future__ import annotations

import torch


class LinearFeatureBaseline:
    def __init__(self, obs_dim: int, reg_coeff: float = 1e-5, max_tries: int = 5):
        self.obs_dim = obs_dim
        self.reg_coeff = reg_coeff
        self.max_tries = max_tries
        self.weights: torch.Tensor | None = None  # [*B, 2*obs_dim + 4]

    @property
    def feature_size(self) -> int:
        return 2 * self.obs_dim + 4

    @staticmethod
    def features(obs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """[*B, T, F, d] observations -> [*B, T, F, 2d+4] features, zero at padded steps."""
        obs = obs.detach().double()
        steps = obs.shape[-3]
        t = (torch.arange(steps, dtype=torch.float64, device=obs.device) / 100.0).view(steps, 1, 1)
        t = t.expand(*obs.shape[:-1], 1)
        feats = torch.cat([obs, obs.pow(2), t, t.pow(2), t.pow(3), torch.ones_like(t)], dim=-1)
        valid = mask.detach().unsqueeze(-1) > 0
        return torch.where(valid, feats, torch.zeros_like(feats))  # where, not *: NaN padding stays out

    def fit(self, obs: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Fit one weight vector per leading index; returns the weights [*B, 2d+4] (float64)."""
        feats = self.features(obs, mask)
        batch = feats.shape[:-3]
        x = feats.reshape(*batch, -1, self.feature_size)
        ret = returns.detach().double()
        y = torch.where(mask.detach() > 0, ret, torch.zeros_like(ret)).reshape(*batch, -1, 1)
        xtx, xty = x.transpose(-1, -2) @ x, x.transpose(-1, -2) @ y
        if not (torch.isfinite(xtx).all() and torch.isfinite(xty).all()):
            raise RuntimeError("linear baseline: non-finite observations or returns at valid (unmasked) steps")
        eye = torch.eye(self.feature_size, dtype=torch.float64, device=x.device)
        reg = self.reg_coeff
        for _ in range(self.max_tries):
            try:
                w = torch.linalg.lstsq(xtx + reg * eye, xty).solution.squeeze(-1)
            except RuntimeError:  # a LAPACK failure counts like a non-finite solution
                w = torch.full_like(xty.squeeze(-1), float("nan"))
            if torch.isfinite(w).all():
                self.weights = w
                return w
            reg *= 10.0
        raise RuntimeError(f"linear baseline: no finite solution even with ridge coefficient {reg / 10:g}")

    def predict(self, obs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Values [*B, T, F] (zero at padded steps), in the dtype of ``obs``."""
        if self.weights is None:
            raise RuntimeError("linear baseline: predict() before fit()")
        values = (self.features(obs, mask) @ self.weights.unsqueeze(-1).unsqueeze(-3)).squeeze(-1)
        return values.to(obs.dtype)

    def fit_predict(self, obs: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        self.fit(obs, returns, mask)
        return self.predict(obs, mask)
