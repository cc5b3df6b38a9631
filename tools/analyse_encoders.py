"""Analyse untrained history encoders (SplAgger paper, Fig. 'gradient decay' / 'permutation').

For each encoder (gru, splagger = gru + split + max, max-noRNN, avg = noRNN + avg), at init:

* gradient decay through time: || d latent_T / d input_t ||_F (mean over the batch) vs t,
  where latent_T is the posterior mean after the last step and input_t = (a_t, r_t, s'_t);
* permutation sensitivity: || latent_T(perm(seq)) - latent_T(seq) || / || latent_T(seq) ||
  over random permutations of the time order (0 = permutation invariant).

Inputs are random-policy rollouts of TMaze-LN (``--env``; any registered env works).

    python -m tools.analyse_encoders --out runs/encoder_analysis [--steps 100 --batch 16]

Writes grad_decay.png, perm_sensitivity.png and results.json into --out.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch

from models.history_encoder import HistoryEncoder

ENCODERS = {
    "gru": {"enc_type": "gru"},
    "splagger": {"enc_type": "gru", "skip": "split", "agg_type": "max"},
    "max-noRNN": {"enc_type": "none", "agg_type": "max"},
    "avg": {"enc_type": "none", "agg_type": "avg"},
}


def make_encoder(name: str, action_dim: int, state_dim: int, latent_dim: int, hidden: int) -> HistoryEncoder:
    return HistoryEncoder(action_dim, state_dim, latent_dim, hidden_size=hidden, full_transitions=True,
                          **ENCODERS[name])


def rollout(env_name: str, steps: int, batch: int, seed: int):
    """Random-policy rollout: (actions [T,B,da], states [T,B,ds], rewards [T,B,1], prev_states)."""
    import environments
    try:
        import environments.memory  # noqa: F401
    except ImportError:  # pragma: no cover
        pass
    from environments.registry import make_env

    env = make_env(env_name, num_envs=batch, seed=seed)
    g = torch.Generator().manual_seed(seed)
    obs = env.reset()
    acts, states, rews, prevs = [], [], [], []
    for _ in range(steps):
        if env.is_discrete:
            a = torch.randint(env.action_space.n, (batch,), generator=g)
            a_in = torch.nn.functional.one_hot(a, env.action_space.n).float()
        else:
            a = torch.rand(batch, env.action_space.shape[0], generator=g) * 2 - 1
            a_in = a
        nxt, r, term, trunc, _ = env.step(a)
        done = term | trunc
        acts.append(a_in), states.append(nxt), rews.append(r.unsqueeze(-1)), prevs.append(obs)
        obs = nxt
        if bool(done.any()):
            obs = env.reset_mdp(done)
    return torch.stack(acts), torch.stack(states), torch.stack(rews), torch.stack(prevs)


def grad_decay(enc: HistoryEncoder, a, s, r, ps) -> torch.Tensor:
    """[T]: mean over batch of || d mean_T / d (a_t, r_t, s'_t) ||_F."""
    a, s, r = (x.clone().requires_grad_(True) for x in (a, s, r))
    mean, _, _ = enc(a, s, r, ps)
    last = mean[-1]  # [B, z]
    sq = torch.zeros(a.shape[0], a.shape[1])
    for k in range(last.shape[1]):
        ga, gs, gr = torch.autograd.grad(last[:, k].sum(), (a, s, r), retain_graph=True)
        sq += ga.pow(2).sum(-1) + gs.pow(2).sum(-1) + gr.pow(2).sum(-1)
    return sq.sqrt().mean(1)


@torch.no_grad()
def perm_sensitivity(enc: HistoryEncoder, a, s, r, ps, num_perms: int, g: torch.Generator) -> list[float]:
    base = enc(a, s, r, ps)[0][-1]
    out = []
    for _ in range(num_perms):
        p = torch.randperm(a.shape[0], generator=g)
        m = enc(a[p], s[p], r[p], ps[p])[0][-1]
        out.append(float(((m - base).norm(dim=-1) / base.norm(dim=-1).clamp_min(1e-8)).mean()))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output directory for the PNGs and results.json")
    ap.add_argument("--env", default="TMaze-LN")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--latent_dim", type=int, default=12)
    ap.add_argument("--num_perms", type=int, default=10)
    ap.add_argument("--seeds", type=int, default=3, help="independent encoder inits per model")
    ap.add_argument("--encoders", nargs="+", default=list(ENCODERS), choices=list(ENCODERS))
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)

    a, s, r, ps = rollout(args.env, args.steps, args.batch, seed=0)
    results = {}
    for name in args.encoders:
        grads, perms = [], []
        for seed in range(args.seeds):
            torch.manual_seed(seed)
            enc = make_encoder(name, a.shape[-1], s.shape[-1], args.latent_dim, args.hidden)
            grads.append(grad_decay(enc, a, s, r, ps))
            perms += perm_sensitivity(enc, a, s, r, ps, args.num_perms, torch.Generator().manual_seed(seed))
        g = torch.stack(grads).mean(0)
        results[name] = {"grad_norm": g.tolist(), "perm_diff_mean": float(torch.tensor(perms).mean()),
                         "perm_diff_std": float(torch.tensor(perms).std())}
        print(f"{name:10s} grad t=0: {g[0]:.3e}  t=T-1: {g[-1]:.3e}  perm diff: {results[name]['perm_diff_mean']:.4f}")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, res in results.items():
        ax.plot(range(len(res["grad_norm"])), res["grad_norm"], label=name)
    ax.set_yscale("log")
    ax.set_xlabel("input step t")
    ax.set_ylabel(r"$\|\partial\, \mu_T / \partial x_t\|$")
    ax.set_title(f"Gradient decay at init ({args.env}, T={args.steps})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "grad_decay.png"), dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    names = list(results)
    ax.bar(names, [results[n]["perm_diff_mean"] for n in names], yerr=[results[n]["perm_diff_std"] for n in names])
    ax.set_ylabel(r"$\|\mu_T(\pi(x)) - \mu_T(x)\| / \|\mu_T(x)\|$")
    ax.set_title("Permutation sensitivity at init")
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "perm_sensitivity.png"), dpi=120)
    plt.close(fig)

    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"args": vars(args), "results": results}, f, indent=1)
    return results


if __name__ == "__main__":
    main()
