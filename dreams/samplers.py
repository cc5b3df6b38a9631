"""Latent samplers for dream tasks: KDE, mixup and prior (ReId, Rimon et al. 2022).

Every sampler draws ``sample(n, rng=None) -> torch.Tensor [n, d]`` (float32). ``rng`` may be a
``numpy.random.Generator``, a ``torch.Generator`` (a numpy generator is seeded from it) or None:
the sampler's own generator, seeded by ``seed`` at construction, whose state is part of
``state_dict()``; ``load_sampler(state)`` rebuilds any sampler exactly (fitted data included).

- ``KDESampler``: ``scipy.stats.gaussian_kde`` over a pool of latents [M, d]. Scott's rule by
  default (factor M^(-1/(d+4))); ``bandwidth`` may be "scott", "silverman" or a number, which is
  scipy's bandwidth factor: the kernel covariance is factor^2 times the pool's (unbiased)
  covariance. A draw is a pool point plus Gaussian kernel noise.
- ``MixupSampler``: convex combinations of pool latents with Dirichlet weights. ReId mixes
  *all* pool points with weights uniform on the simplex, i.e. Dirichlet(1, ..., 1)
  (``alpha=1``, ``num_mix=None``); ``num_mix=k`` mixes k distinct pool points picked uniformly.
- ``PriorSampler``: a diagonal Gaussian, N(0, I) by default; pass the encoder's prior
  ``mean``/``logvar`` for ReId's "learned prior" (its fallback when no KDE is used).
"""
from __future__ import annotations

import numpy as np
import torch

Rng = np.random.Generator | torch.Generator | None


def parse_bandwidth(value: str | float | int) -> str | float:
    """'scott' | 'silverman' | a positive number (also as a string) -> scipy's ``bw_method``."""
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("scott", "silverman"):
            return low
        try:
            value = float(low)
        except ValueError:
            raise ValueError(f"bandwidth must be 'scott', 'silverman' or a positive number, got {value!r}") from None
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"bandwidth must be positive, got {value}")
    return value


def _as_pool(pool) -> np.ndarray:
    arr = pool.detach().cpu().double().numpy() if isinstance(pool, torch.Tensor) else np.asarray(pool, np.float64)
    if arr.ndim != 2 or len(arr) < 1:
        raise ValueError(f"a latent pool must be [M, d] with M >= 1, got shape {arr.shape}")
    return arr.copy()


def _flat(x) -> np.ndarray:
    x = x.detach().cpu().double().numpy() if isinstance(x, torch.Tensor) else x
    return np.asarray(x, np.float64).reshape(-1).copy()


class LatentSampler:
    """Base: the generator, checkpoints, torch output."""

    kind = "base"

    def __init__(self, latent_dim: int, seed: int = 0):
        self.latent_dim = int(latent_dim)
        self.rng = np.random.default_rng(seed)

    def _rng(self, rng: Rng) -> np.random.Generator:
        if rng is None:
            return self.rng
        if isinstance(rng, torch.Generator):
            return np.random.default_rng(int(torch.randint(2**62, (1,), generator=rng)))
        return rng

    def sample(self, n: int, rng: Rng = None) -> torch.Tensor:
        """``n`` latents [n, d] (float32, CPU)."""
        out = self._draw(int(n), self._rng(rng))
        return torch.as_tensor(np.asarray(out, np.float64).reshape(n, self.latent_dim), dtype=torch.float32)

    def _draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def _params(self) -> dict:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """Kind, fitted data (torch tensors, float64) and generator state: ``load_sampler`` rebuilds it."""
        return {"kind": self.kind, "params": self._params(), "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        if state["kind"] != self.kind:
            raise ValueError(f"state of a {state['kind']} sampler given to a {self.kind} sampler")
        self.rng.bit_generator.state = state["rng"]


class KDESampler(LatentSampler):
    """Gaussian KDE over pool latents [M, d] (scipy), Scott's rule unless ``bandwidth`` says otherwise."""

    kind = "kde"

    def __init__(self, pool_latents, bandwidth: str | float = "scott", seed: int = 0):
        data = _as_pool(pool_latents)
        super().__init__(data.shape[1], seed)
        self.bandwidth = parse_bandwidth(bandwidth)
        self.pool = data
        if len(data) <= data.shape[1]:
            raise ValueError(f"a KDE over {data.shape[1]}-d latents needs more than {data.shape[1]} latents, "
                             f"got {len(data)} (its covariance would be singular)")
        try:
            from scipy.stats import gaussian_kde  # imported where used: scipy.stats costs ~60 MB

            self.kde = gaussian_kde(data.T, bw_method=self.bandwidth)
        except np.linalg.LinAlgError as err:
            raise ValueError(f"the latent pool is degenerate (singular covariance): {err}") from None

    @property
    def factor(self) -> float:
        """The bandwidth factor (Scott: M^(-1/(d+4)))."""
        return float(self.kde.factor)

    @property
    def covariance(self) -> np.ndarray:
        """Kernel covariance [d, d] = factor^2 * the pool's unbiased covariance."""
        return np.array(self.kde.covariance)

    def expected_sample_covariance(self) -> np.ndarray:
        """Covariance of the KDE's draws: that of the pool's empirical distribution (biased,
        (M-1)/M times the unbiased one) plus the kernel covariance."""
        empirical = np.cov(self.pool.T, bias=True).reshape(self.latent_dim, self.latent_dim)
        return empirical + self.covariance

    def _draw(self, n, rng):
        return self.kde.resample(n, seed=rng).T

    def _params(self):
        return {"pool": torch.from_numpy(self.pool.copy()), "bandwidth": self.bandwidth}


class MixupSampler(LatentSampler):
    """Dirichlet(alpha) convex combinations of ``num_mix`` pool latents (None: all, as in ReId)."""

    kind = "mixup"

    def __init__(self, pool_latents, alpha: float = 1.0, num_mix: int | None = None, seed: int = 0):
        data = _as_pool(pool_latents)
        super().__init__(data.shape[1], seed)
        if alpha <= 0:
            raise ValueError(f"mixup alpha must be positive, got {alpha}")
        if num_mix is not None and not 1 <= num_mix <= len(data):
            raise ValueError(f"num_mix must be in 1..{len(data)} (the pool size), got {num_mix}")
        self.pool, self.alpha, self.num_mix = data, float(alpha), num_mix

    def _draw(self, n, rng):
        m = len(self.pool)
        k = m if self.num_mix is None else self.num_mix
        weights = rng.dirichlet(np.full(k, self.alpha), size=n)                        # [n, k]
        if k == m:
            return weights @ self.pool
        idx = np.argsort(rng.random((n, m)), axis=1)[:, :k]                              # k distinct per draw
        return np.einsum("nk,nkd->nd", weights, self.pool[idx])

    def _params(self):
        return {"pool": torch.from_numpy(self.pool.copy()), "alpha": self.alpha, "num_mix": self.num_mix}


class PriorSampler(LatentSampler):
    """Diagonal Gaussian N(mean, exp(logvar)); N(0, I) by default."""

    kind = "prior"

    def __init__(self, latent_dim: int, mean=None, logvar=None, seed: int = 0):
        super().__init__(latent_dim, seed)
        self.mean = np.zeros(latent_dim) if mean is None else _flat(mean)
        self.logvar = np.zeros(latent_dim) if logvar is None else _flat(logvar)
        if self.mean.shape != (latent_dim,) or self.logvar.shape != (latent_dim,):
            raise ValueError(f"prior mean/logvar must have {latent_dim} entries")

    def _draw(self, n, rng):
        return self.mean + np.exp(0.5 * self.logvar) * rng.standard_normal((n, self.latent_dim))

    def _params(self):
        return {"latent_dim": self.latent_dim, "mean": torch.from_numpy(self.mean.copy()),
                "logvar": torch.from_numpy(self.logvar.copy())}


_KINDS = {cls.kind: cls for cls in (KDESampler, MixupSampler, PriorSampler)}


def load_sampler(state: dict) -> LatentSampler:
    """Rebuild a sampler (fitted data and generator state) from its ``state_dict()``."""
    if state["kind"] not in _KINDS:
        raise ValueError(f"unknown sampler kind {state['kind']!r}")
    params = dict(state["params"])
    if state["kind"] == "kde":
        sampler = KDESampler(params["pool"], params["bandwidth"])
    elif state["kind"] == "mixup":
        sampler = MixupSampler(params["pool"], params["alpha"], params["num_mix"])
    else:
        sampler = PriorSampler(params["latent_dim"], params["mean"], params["logvar"])
    sampler.load_state_dict(state)
    return sampler


def make_sampler(kind: str, pool_latents=None, latent_dim: int | None = None, bandwidth: str | float = "scott",
                 alpha: float = 1.0, num_mix: int | None = None, seed: int = 0) -> LatentSampler:
    """One entry point for the trainer: ``kind`` in kde | mixup | prior."""
    if kind == "kde":
        return KDESampler(pool_latents, bandwidth, seed)
    if kind == "mixup":
        return MixupSampler(pool_latents, alpha, num_mix, seed)
    if kind == "prior":
        if latent_dim is None:
            latent_dim = _as_pool(pool_latents).shape[1]
        return PriorSampler(latent_dim, seed=seed)
    raise ValueError(f"unknown latent sampler {kind!r}: choose kde, mixup or prior")
