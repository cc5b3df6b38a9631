"""RoomNavi (HyperX), batched in torch.

Three ``num_cells`` x ``num_cells`` rooms (3x3) in a row, joined by horizontal corridors of
``corridor_len`` cells (3) that run along the middle row. Coordinates are centred: the middle
room spans x, y in [-1, 1], the corridors x in [2, 4] / [-4, -2] (y = 0 only) and the side
rooms x in [5, 7] / [-7, -5]. Start (0, 0), H = 50, actions noop/up/right/down/left
(moves into walls leave the agent in place).

Task (task_dim 6) = (G1, G2, G3):
    G1  a corner of the middle room (4 options)
    G2  a corner of the left room if G1 is on the left (x < 0), else of the right room (4)
    G3  a corner of the middle room other than G1 (3)
so there are 4 * 4 * 3 = 48 tasks (``num_tasks = 48``; the reference declared 64, which
counts impossible G3 = G1 combinations). ``task_id`` maps a task to 0..47.

Reward per step (first matching case, as in the reference):
    on G1:                         +1    (marks G1 reached)
    on G2 once G1 was reached:     +10   (marks G2 reached)
    on G3 once G2 was reached:     +100  (marks G3 reached)
    otherwise:                     -0.1
"Reached" flags reset with every MDP episode. As in the reference a goal pays on every
step spent on it; ``repeat_goal_rewards=False`` pays each goal once per episode instead.
info: "pos" [N, 2], "stage" [N] (goals reached in order this episode: 0..3) and "success"
[N] (1.0 once G3 has been reached this episode).
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from environments.base import MetaEnv
from environments.registry import ENVS

# dx, dy per action: noop, up, right, down, left
_MOVES = torch.tensor([[0, 0], [0, 1], [1, 0], [0, -1], [-1, 0]], dtype=torch.long)
_REWARDS = (1.0, 10.0, 100.0)


@ENVS.register("RoomNavi")
class RoomNavi(MetaEnv):
    member_state = ("step_count", "pos", "goals", "reached")  # per-copy state (environments/members.py)

    def __init__(self, num_envs: int, seed: int = 0, device="cpu", num_cells: int = 3,
                 corridor_len: int = 3, max_episode_steps: int = 50, step_penalty: float = -0.1,
                 repeat_goal_rewards: bool = True):
        super().__init__(num_envs, seed, device)
        if num_cells % 2 != 1 or num_cells < 3:
            raise ValueError(f"num_cells must be odd and >= 3, got {num_cells}")
        self.num_cells, self.corridor_len = num_cells, corridor_len
        self.offset = (num_cells - 1) // 2                       # 1: room half-width
        self.side_centre = corridor_len + 2 * self.offset + 1      # 6: x of the side room centres
        self.half_width = self.side_centre + self.offset          # 7: largest |x|
        self.max_episode_steps = max_episode_steps
        self.step_penalty, self.repeat_goal_rewards = step_penalty, repeat_goal_rewards
        hw, o = self.half_width, self.offset
        self.observation_space = gym.spaces.Box(np.array([-hw, -o], np.float32),
                                                np.array([hw, o], np.float32), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(5)
        self.task_dim = 6
        self.num_tasks = 48
        self._build_layout()
        n = self.num_envs
        self.pos = torch.zeros(n, 2, dtype=torch.long, device=self.device)
        self.goals = torch.zeros(n, 3, 2, dtype=torch.long, device=self.device)
        self.reached = torch.zeros(n, 3, dtype=torch.bool, device=self.device)
        self.reset()

    def _build_layout(self):
        o, c = self.offset, self.side_centre
        corners = torch.tensor([[-o, o], [-o, -o], [o, o], [o, -o]], dtype=torch.long)
        shift = torch.tensor([c, 0], dtype=torch.long)
        self.corners_middle = corners.to(self.device)
        self.corners_left = (corners - shift).to(self.device)
        self.corners_right = (corners + shift).to(self.device)
        self.moves = _MOVES.to(self.device)
        # cell ids of the valid cells (for multi-head reward decoders), -1 for walls
        xs = torch.arange(-self.half_width, self.half_width + 1)
        ys = torch.arange(-o, o + 1)
        gx, gy = torch.meshgrid(xs, ys, indexing="ij")
        valid = self._valid(torch.stack([gx, gy], -1))
        table = torch.full(valid.shape, -1, dtype=torch.long)
        table[valid] = torch.arange(int(valid.sum()))
        self.num_states = int(valid.sum())                        # 33 for the defaults
        self.cell_table = table.to(self.device)
        # step tables (integer lookups: the same positions as moving and checking walls):
        # next position of every grid cell x action, indexed by cell * 5 + action
        grid = torch.stack([gx, gy], -1).reshape(-1, 2)            # cell (x + hw) * (2o + 1) + (y + o)
        new = grid[:, None, :] + _MOVES[None]                      # [cells, 5, 2]
        nxt = torch.where(self._valid(new)[..., None], new, grid[:, None, :])
        self._next_pos = nxt.reshape(-1, 2).to(self.device)
        self._cell_stride = torch.tensor([(2 * o + 1) * len(_MOVES), len(_MOVES)], dtype=torch.long, device=self.device)
        self._cell_offset = (self.half_width * (2 * o + 1) + o) * len(_MOVES)
        # reward per paid goal (0: none), in float32 as the reward tensor
        self._reward_table = torch.tensor([self.step_penalty, *_REWARDS], device=self.device)
        self._goal_code = torch.tensor([1, 2, 3], dtype=torch.long, device=self.device)

    def _in_corridor(self, x: torch.Tensor) -> torch.Tensor:
        return (x.abs() >= self.offset + 1) & (x.abs() <= self.offset + self.corridor_len)

    def _valid(self, xy: torch.Tensor) -> torch.Tensor:
        """Whether cells (x, y) [..., 2] are free (rooms, or corridors on the middle row)."""
        x, y = xy[..., 0], xy[..., 1]
        inside = (x.abs() <= self.half_width) & (y.abs() <= self.offset)
        return inside & (~self._in_corridor(x) | (y == 0))

    def cell_id(self, xy: torch.Tensor) -> torch.Tensor:
        """Index 0..num_states-1 of valid cells (x, y) [..., 2] (float or long)."""
        xy = xy[..., :2].round().long()
        return self.cell_table[xy[..., 0] + self.half_width, xy[..., 1] + self.offset]

    # ----- tasks ----------------------------------------------------------------------
    def sample_tasks(self, n: int) -> torch.Tensor:
        g = self.generator
        i1 = torch.randint(4, (n,), generator=g).to(self.device)
        i2 = torch.randint(4, (n,), generator=g).to(self.device)
        j3 = torch.randint(3, (n,), generator=g).to(self.device)
        i3 = j3 + (j3 >= i1).long()                               # any middle corner but G1
        g1 = self.corners_middle[i1]
        g2 = torch.where((g1[:, :1] < 0), self.corners_left[i2], self.corners_right[i2])
        g3 = self.corners_middle[i3]
        return torch.cat([g1, g2, g3], 1).float()

    @staticmethod
    def _corner_index(xy: torch.Tensor, centre_x: torch.Tensor) -> torch.Tensor:
        """Index (0..3) of a corner in the order (-,+), (-,-), (+,+), (+,-) around its room centre."""
        return 2 * (xy[..., 0] > centre_x).long() + (xy[..., 1] < 0).long()

    def task_id(self, tasks: torch.Tensor) -> torch.Tensor:
        """Task index 0..47 of tasks [..., 6]: (i1 * 4 + i2) * 3 + k3."""
        t = tasks.round().long()
        g1, g2, g3 = t[..., 0:2], t[..., 2:4], t[..., 4:6]
        zero = torch.zeros_like(g1[..., 0])
        i1 = self._corner_index(g1, zero)
        i2 = self._corner_index(g2, torch.sign(g2[..., 0]) * self.side_centre)
        i3 = self._corner_index(g3, zero)
        k3 = i3 - (i3 > i1).long()
        return (i1 * 4 + i2) * 3 + k3

    task_to_id = task_id

    def set_task(self, mask, tasks):
        self.goals[mask] = tasks.round().long().reshape(-1, 3, 2)
        self.reached[mask] = False

    def get_task(self):
        return self.goals.reshape(self.num_envs, 6).float()

    # ----- dynamics -------------------------------------------------------------------
    def _reset_state(self, mask):
        self.pos[mask] = 0
        self.reached[mask] = False

    def _obs(self):
        return self.pos.float()

    def _reward(self):
        on = (self.pos[:, None, :] == self.goals).all(-1)          # [N, 3]
        # goal k counts if the agent is on it and goal k-1 was reached (G1: always); only
        # the first such goal is hit: hit_k = cand_k & no cand_j, j < k
        cand = on.clone()
        cand[:, 1:] &= self.reached[:, :2]
        hits = cand & (cand.cumsum(1) == 1)
        paid = hits if self.repeat_goal_rewards else hits & ~self.reached
        # at most one goal is paid: its reward, else the step penalty (a table lookup)
        reward = self._reward_table[(paid * self._goal_code).sum(1)]
        self.reached = self.reached | hits
        return reward

    def step(self, actions):
        actions = actions.reshape(-1).long()
        # a move into a wall (incl. up/down inside a corridor) leaves the agent in place:
        # the next position of (cell, action) is looked up in a table built with ``_valid``
        self.pos = self._next_pos[(self.pos * self._cell_stride).sum(1) + (self._cell_offset + actions)]
        reward = self._reward()
        truncated = self._advance_time()
        stage = self.reached.sum(1).float()
        info = {"pos": self.pos.float(), "stage": stage, "success": self.reached[:, 2].float()}
        return self._obs(), reward, torch.zeros_like(truncated), truncated, info

    # ----- plotting -------------------------------------------------------------------
    def plot_rollout(self, rollout, path):
        """Rooms, goals G1..G3 and the agent's path (coloured by bonus if given)."""
        from matplotlib.figure import Figure  # no pyplot: no global backend state
        from matplotlib.patches import Rectangle

        hw, o = self.half_width, self.offset
        fig = Figure(figsize=(8, 2.5))
        ax = fig.subplots()
        cells = self.cell_table.cpu() >= 0
        for ix, iy in cells.nonzero().tolist():
            ax.add_patch(Rectangle((ix - hw - 0.5, iy - o - 0.5), 1, 1, fc="whitesmoke", ec="grey"))
        goals = np.asarray(rollout["task"]).reshape(3, 2)
        for k, (gx, gy) in enumerate(goals):
            ax.add_patch(Rectangle((gx - 0.5, gy - 0.5), 1, 1, fc=("gold", "orange", "red")[k], alpha=0.6))
            ax.text(gx, gy, f"G{k + 1}", ha="center", va="center", fontsize=9)
        pos = rollout.get("pos")
        pos = np.asarray(pos if pos is not None else rollout["obs"][:, :2], dtype=float)
        # small jitter so that repeated visits stay visible
        jitter = np.linspace(-0.15, 0.15, len(pos))[:, None]
        ax.plot(pos[:, 0] + jitter[:, 0], pos[:, 1] + jitter[:, 0], "-", color="royalblue", alpha=0.5)
        bonus = rollout.get("bonus")
        if bonus is not None:
            bonus = np.asarray(bonus).reshape(-1)
            after = slice(len(pos) - len(bonus), None)
            sc = ax.scatter(pos[after, 0] + jitter[after, 0], pos[after, 1] + jitter[after, 0],
                            c=bonus, cmap="viridis", s=14, zorder=3)
            fig.colorbar(sc, ax=ax, label="bonus")
        ax.set_xlim(-hw - 0.6, hw + 0.6)
        ax.set_ylim(-o - 0.6, o + 0.6)
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"return {float(np.sum(rollout['rewards'])):.1f}")
        fig.savefig(path, dpi=100, bbox_inches="tight")
