"""Does a GRU forward+backward get cheaper per member when S members run as one stacked
computation? (What bounds ``--num_seeds`` on the CPU: the VAE's GRU over its trajectories.)

    python benchmarks/bench_member_gru.py [--members 8] [--steps 60] [--batch 25] [--hidden 64] [--input 16]

Times, for the gridworld VAE's sizes by default: torch's ``nn.GRU`` for one member; the GRU cell
written out (``models.members.gru_cell`` ops) for one member; the same for S members stacked
(``members.linear`` = one baddbmm per gate matmul). Prints ms per forward+backward and the
stacked/one-member ratio (S would mean no gain from batching; 1 would mean S members for free).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from models import members  # noqa: E402


def unrolled(x, h, w_ih, w_hh, b_ih, b_hh):
    """x [S, T, B, in] -> hidden states [S, T, B, H], one stacked cell per step."""
    outs = []
    for t in range(x.shape[1]):
        h = members.gru_cell(x[:, t], h, w_ih, w_hh, b_ih, b_hh)
        outs.append(h)
    return torch.stack(outs, 1)


def ms_per_call(fn, reps: int) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps * 1e3


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--members", type=int, default=8)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch", type=int, default=25)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--input", type=int, default=16)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    g = torch.Generator().manual_seed(0)
    S, T, B, H, In = a.members, a.steps, a.batch, a.hidden, a.input

    def params(n):
        return [(torch.randn(n, 3 * H, In, generator=g) * 0.1).requires_grad_(),
                (torch.randn(n, 3 * H, H, generator=g) * 0.1).requires_grad_(),
                torch.zeros(n, 3 * H, requires_grad=True), torch.zeros(n, 3 * H, requires_grad=True)]

    x1, xs = torch.randn(1, T, B, In, generator=g), torch.randn(S, T, B, In, generator=g)
    p1, ps = params(1), params(S)
    gru = torch.nn.GRU(In, H)
    t_nn = ms_per_call(lambda: gru(x1[0].contiguous())[0].sum().backward(), a.reps)
    t_one = ms_per_call(lambda: unrolled(x1, torch.zeros(1, B, H), *p1).sum().backward(), a.reps)
    t_all = ms_per_call(lambda: unrolled(xs, torch.zeros(S, B, H), *ps).sum().backward(), a.reps)
    print(f"GRU forward+backward, T={T} B={B} H={H} in={In}, {a.threads} thread(s):")
    print(f"  nn.GRU, one member:            {t_nn:8.1f} ms")
    print(f"  unrolled cell, one member:     {t_one:8.1f} ms")
    print(f"  unrolled cell, {S} members stacked: {t_all:8.1f} ms  = {t_all / t_one:.1f}x one member "
          f"({S}x the work; {S} would mean no gain from batching)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
