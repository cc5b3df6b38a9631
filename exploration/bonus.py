"""HyperX exploration bonuses: hyper-state / state / belief RND and the VAE-error bonus.

    total[t] = w(frames) * sum_k  lambda_k * normalise_k(raw_k[t])

for the enabled bonuses k in ("hyperstate", "state", "belief", "vae_error"):
    hyperstate  RND on (s_{t+1}[state_expl_idx], b_{t+1})
    state       RND on s_{t+1}[state_expl_idx]
    belief      RND on b_{t+1}
    vae_error   the VAE's reconstruction error on transition t, computed by the trainer
Each raw bonus has its own ``ReturnNormaliser`` (divide by the running std of its discounted
return, optional clip), is weighted by lambda_k, and the sum is multiplied by the annealing
weight w = max(0, 1 - frames / num_frames) when ``anneal`` is on (else w = 1).

Usage by the trainer, once per iteration:

    bonus = ExplorationBonus(state_dim, belief_dim=2 * latent_dim, num_envs=N, gamma=0.97,
                             hyperstate=True, vae_error=True, weight_vae_error=1.0, ...)
    bonus.set_progress(frames_so_far, num_frames)
    total, stats = bonus.compute(next_states, beliefs, dones, vae_error=vae_err)  # [T, N]
    rewards_for_gae = rewards_normalised + total
    losses = bonus.update_rnd(buffer_states, buffer_beliefs)   # beliefs re-encoded from the VAE buffer

Alignment: ``next_states[t]`` is s_{t+1}, the observation returned by step t *before* any
reset, and ``beliefs[t]`` is b_{t+1} = (latent_mean, latent_logvar) after encoding
transition t -- at the last step of a BAMDP this must still be the posterior of the ending
task, not the prior of the next one (the reference paired the terminal state with the prior).
``dones[t]`` is True when the BAMDP ended after step t (see ``utils.running_stats.ReturnNormaliser``).

There is no RND pretraining step: the randomly initialised predictor already gives a valid
bonus, and the normalisers update their statistics with the rollout before normalising it,
so the very first ``compute`` call is usable and no policy update has to be skipped.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from utils.running_stats import ReturnNormaliser
from exploration.rnd import RND

BONUS_NAMES = ("hyperstate", "state", "belief", "vae_error")


class ExplorationBonus:
    """Combined, normalised and annealed HyperX bonus.

    Args:
        state_dim: size of the env state s (before ``state_expl_idx`` selection).
        belief_dim: size of the belief b (2 * latent_dim for VariBAD latents); may be 0
            when neither the hyper-state nor the belief bonus is on.
        num_envs: N, the number of env copies in a rollout.
        gamma: discount of the returns tracked by the normalisers (the policy's gamma).
        hyperstate / state / belief / vae_error: which bonuses are on.
        weight_*: lambda of each bonus.
        state_expl_idx: state dims the RND bonuses look at (None or [] = all).
        anneal: multiply the total by max(0, 1 - frames / num_frames) (see ``set_progress``).
        clip: clip each normalised bonus to [-clip, clip] (None = no clip).
        rnd_*: RND hyper-parameters (see ``exploration.rnd.RND``).
        device: where the RND nets and statistics live.
    """

    def __init__(self, state_dim: int, belief_dim: int, num_envs: int, gamma: float, *,
                 hyperstate: bool = True, state: bool = False, belief: bool = False,
                 vae_error: bool = False, weight_hyperstate: float = 1.0, weight_state: float = 1.0,
                 weight_belief: float = 1.0, weight_vae_error: float = 1.0,
                 state_expl_idx: Sequence[int] | None = None, anneal: bool = True,
                 clip: float | None = None, rnd_lr: float = 1e-4, rnd_output_dim: int = 128,
                 rnd_prior_layers: Sequence[int] = (256, 256),
                 rnd_predictor_layers: Sequence[int] = (256, 256),
                 rnd_init_weight_scale: float = 10.0, rnd_norm_inputs: bool = False,
                 device="cpu"):
        self.device = torch.device(device)
        enabled = {"hyperstate": hyperstate, "state": state, "belief": belief, "vae_error": vae_error}
        self.names = [k for k in BONUS_NAMES if enabled[k]]
        self.weights = {"hyperstate": weight_hyperstate, "state": weight_state,
                        "belief": weight_belief, "vae_error": weight_vae_error}
        self.state_expl_idx = (torch.as_tensor(list(state_expl_idx), dtype=torch.long, device=self.device)
                               if state_expl_idx else None)
        ds = state_dim if self.state_expl_idx is None else len(self.state_expl_idx)
        if (hyperstate or belief) and belief_dim < 1:
            raise ValueError("the hyper-state and belief bonuses need belief_dim >= 1")
        input_dims = {"hyperstate": [ds, belief_dim], "state": [ds], "belief": [belief_dim]}
        rnd_kwargs = {"prior_layers": rnd_prior_layers, "predictor_layers": rnd_predictor_layers,
                      "output_dim": rnd_output_dim, "init_weight_scale": rnd_init_weight_scale,
                      "lr": rnd_lr, "normalise_inputs": rnd_norm_inputs, "device": self.device}
        self.rnds = {k: RND(input_dims[k], **rnd_kwargs) for k in self.names if k != "vae_error"}
        self.normalisers = {k: ReturnNormaliser(num_envs, gamma, clip, device=self.device)
                            for k in self.names}
        self.anneal = anneal
        self.anneal_weight = 1.0

    # ----- properties ----------------------------------------------------------------
    @property
    def enabled(self) -> bool:
        return bool(self.names)

    def has_statistics(self) -> bool:
        """Whether the normalisers have seen a training rollout (before that a bonus has no scale)."""
        return all(float(n.rms.count) >= 1 for n in self.normalisers.values())

    @property
    def uses_beliefs(self) -> bool:
        """Whether ``compute``/``update_rnd`` need beliefs (hyper-state or belief RND on)."""
        return "hyperstate" in self.rnds or "belief" in self.rnds

    # ----- public API ----------------------------------------------------------------
    def set_progress(self, frames: int, num_frames: int) -> float:
        """Set the annealing weight from training progress; returns it (1.0 if not annealing)."""
        if self.anneal:
            self.anneal_weight = max(0.0, 1.0 - float(frames) / float(num_frames))
        return self.anneal_weight

    def compute(self, next_states: torch.Tensor, beliefs: torch.Tensor | None, dones: torch.Tensor,
                vae_error: torch.Tensor | Callable[[], torch.Tensor] | None = None,
                update_stats: bool = True, return_parts: bool = False):
        """Bonus of a rollout.

        Args:
            next_states: [T, N, state_dim], s_{t+1} of each transition t.
            beliefs: [T, N, belief_dim], b_{t+1}; may be None if ``uses_beliefs`` is False.
            dones: [T, N] (or [T, N, 1]) bool/float, True where the BAMDP ended after step t.
            vae_error: [T, N] raw VAE-error bonus, or a zero-argument callable returning it
                (called only when the vae_error bonus is on); required if it is on.
            update_stats: update the normalisers and RND input statistics with this rollout
                (set False for evaluation / visualisation rollouts).
            return_parts: also return {name: weighted normalised bonus [T, N]} (before
                annealing), e.g. for per-bonus evaluation returns.
        Returns:
            total [T, N] (no gradient), stats {f"{name}_raw", f"{name}_normalised",
            "total", "anneal_weight": float}, and the parts dict if ``return_parts``.
        """
        dones = self._squeeze(dones)
        raw = self._raw_bonuses(next_states, beliefs, vae_error, update_stats)
        total = torch.zeros(dones.shape, device=self.device)
        stats, parts = {}, {}
        for name, r in raw.items():
            norm = self.normalisers[name](r, dones, update=update_stats)
            parts[name] = self.weights[name] * norm
            total = total + parts[name]
            stats[f"{name}_raw"] = float(r.mean())
            stats[f"{name}_normalised"] = float(norm.mean())
        total = total * self.anneal_weight
        stats["total"] = float(total.mean())
        stats["anneal_weight"] = self.anneal_weight
        return (total, stats, parts) if return_parts else (total, stats)

    def update_rnd(self, states: torch.Tensor, beliefs: torch.Tensor | None = None) -> dict:
        """One Adam step of every RND predictor on a batch.

        states [B, state_dim] and beliefs [B, belief_dim] (any equal leading dims) should be
        hyper-states s_{t+1}, b_{t+1} sampled from the VAE buffer, with the beliefs
        re-encoded by the current encoder. Returns {"rnd/loss_<name>": float}.
        """
        inputs = self._rnd_inputs(states, beliefs)
        return {f"rnd/loss_{name}": rnd.update(inputs[name]) for name, rnd in self.rnds.items()}

    def state_dict(self) -> dict:
        return {"rnd": {k: v.state_dict() for k, v in self.rnds.items()},
                "normalisers": {k: v.state_dict() for k, v in self.normalisers.items()},
                "anneal_weight": self.anneal_weight}

    def load_state_dict(self, state: dict) -> None:
        if set(state["rnd"]) != set(self.rnds) or set(state["normalisers"]) != set(self.normalisers):
            raise ValueError(f"checkpoint holds bonuses {sorted(state['normalisers'])}, "
                             f"this ExplorationBonus has {self.names}")
        for k, v in self.rnds.items():
            v.load_state_dict(state["rnd"][k])
        for k, v in self.normalisers.items():
            v.load_state_dict(state["normalisers"][k])
        self.anneal_weight = float(state["anneal_weight"])

    # ----- helpers -------------------------------------------------------------------
    @staticmethod
    def _squeeze(x: torch.Tensor) -> torch.Tensor:
        return x[..., 0] if x.dim() == 3 and x.shape[-1] == 1 else x

    def _rnd_inputs(self, states, beliefs) -> dict:
        s = states.detach().to(self.device, torch.float32)  # never backprop into the encoder
        if self.state_expl_idx is not None:
            s = s.index_select(-1, self.state_expl_idx)
        if self.uses_beliefs:
            if beliefs is None:
                raise ValueError("beliefs are required by the hyper-state / belief bonus")
            beliefs = beliefs.detach().to(self.device, torch.float32)
        return {"hyperstate": [s, beliefs], "state": [s], "belief": [beliefs]}

    @torch.no_grad()
    def _raw_bonuses(self, next_states, beliefs, vae_error, update_stats) -> dict:
        inputs = self._rnd_inputs(next_states, beliefs)
        raw = {}
        for name, rnd in self.rnds.items():
            if update_stats:
                rnd.observe(inputs[name])
            raw[name] = rnd.bonus(inputs[name])
        if "vae_error" in self.names:
            if vae_error is None:
                raise ValueError("the vae_error bonus is on: pass vae_error=[T, N] or a callable")
            err = vae_error() if callable(vae_error) else vae_error
            raw["vae_error"] = self._squeeze(err.detach().to(self.device, torch.float32))
        return {k: raw[k] for k in self.names}
