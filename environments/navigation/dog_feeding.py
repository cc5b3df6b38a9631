"""Dog-feeding robot (in the spirit of MIME's DogNavigation2D), batched in torch.

A robot moves in a 10 x 10 house with walls, doors and furniture, and must find which of
three dog bowls holds food. The map is our own: a 100 x 100 occupancy grid (one pixel =
0.1 units) built from the rectangles in ``WALLS`` (it is not MIME's ``dog_house.png``).

- Observation (x, y, collision flag) in [0, 10]^2 x {0, 1}; start (1.3, 2.0).
- Action: velocity clipped to [-0.1, 0.1] per axis. A move is executed only if the 3 x 3
  pixel neighbourhood of the destination (rounded to the pixel grid) lies inside the map
  and is free; otherwise the robot stays and the collision flag is 1 (0 after a move).
  (MIME also blocks off-map moves, but there partially through numpy slicing quirks.)
- Task: the (x, y) of the bowl with food, one of BOWLS = (2.0, 9.0), (5.3, 4.0), (8.5, 1.3)
  (MIME's positions). ``sample_tasks(n)`` draws uniformly among them (MIME ignored the
  number of tasks and always returned all three). ``test_tasks()`` = bowls 0 and 2.
- Reward: +1 on every step with ||pos - bowl|| < 0.5 (sparse, default); ``sparse=False``
  gives -||pos - bowl||. info: "pos", "success" (within 0.5), "sparse_reward",
  "dense_reward", "collision". H = 1000, no early termination.
"""
from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from environments.base import MetaEnv
from environments.registry import ENVS
from environments.navigation import rollout_xy

MAP_PIXELS = 100       # map side in pixels
PIXEL = 0.1            # map units per pixel
BOWLS = ((2.0, 9.0), (5.3, 4.0), (8.5, 1.3))
TEST_BOWLS = (0, 2)
START = (1.3, 2.0)
BOWL_RADIUS = 0.5

# Obstacles as pixel rectangles (x0, x1, y0, y1), half-open: columns x0..x1-1, rows y0..y1-1.
WALLS = (
    (0, 100, 0, 2), (0, 100, 98, 100), (0, 2, 0, 100), (98, 100, 0, 100),   # outer walls
    (0, 8, 60, 62), (20, 70, 60, 62),              # wall between the lower rooms and the hall, door x 8..19
    (35, 37, 0, 24), (35, 37, 38, 60),             # wall lower-left | lower-middle, door y 24..37
    (70, 72, 0, 42), (70, 72, 54, 72), (70, 72, 84, 100),  # wall to the east wing, doors y 42..53 and 72..83
    (5, 15, 40, 50),                               # bed in the start room
    (44, 60, 10, 20),                              # table in the kitchen
    (30, 52, 76, 81),                              # sofa in the hall
    (80, 92, 48, 60),                              # cupboard in the east wing
)


def build_map() -> torch.Tensor:
    """[100, 100] bool, True where blocked; indexed [row = y pixel, column = x pixel]."""
    blocked = torch.zeros(MAP_PIXELS, MAP_PIXELS, dtype=torch.bool)
    for x0, x1, y0, y1 in WALLS:
        blocked[y0:y1, x0:x1] = True
    return blocked


def standable(blocked: torch.Tensor) -> torch.Tensor:
    """[100, 100] bool: pixels whose whole 3 x 3 neighbourhood is on the map and free."""
    padded = F.pad(blocked.float()[None, None], (1, 1, 1, 1), value=1.0)  # off-map counts as blocked
    return F.max_pool2d(padded, 3, stride=1)[0, 0] == 0


@ENVS.register("DogFeeding")
class DogFeeding(MetaEnv):
    def __init__(self, num_envs: int, seed: int = 0, device="cpu", sparse: bool = True, max_episode_steps: int = 1000,
                 max_action: float = 0.1):
        super().__init__(num_envs, seed, device)
        self.sparse, self.max_episode_steps, self.max_action = bool(sparse), int(max_episode_steps), float(max_action)
        self.observation_space = gym.spaces.Box(0.0, 10.0, shape=(3,), dtype=np.float32)
        self.action_space = gym.spaces.Box(-self.max_action, self.max_action, shape=(2,), dtype=np.float32)
        self.task_dim = 2
        self.num_tasks = len(BOWLS)
        self.bowls = torch.tensor(BOWLS, dtype=torch.float32, device=self.device)
        self.blocked = build_map().to(self.device)
        self.free = standable(self.blocked)
        self.start = torch.tensor(START, dtype=torch.float32, device=self.device)
        self.pos = self.start.expand(self.num_envs, 2).clone()
        self.collision = torch.zeros(self.num_envs, device=self.device)
        self.goal = self.bowls[torch.zeros(self.num_envs, dtype=torch.long, device=self.device)]
        self.reset()

    # ----- tasks ---------------------------------------------------------------------
    def sample_tasks(self, n: int) -> torch.Tensor:
        idx = torch.randint(len(BOWLS), (n,), generator=self.generator)
        return self.bowls[idx.to(self.device)].clone()

    def test_tasks(self) -> torch.Tensor:
        """MIME's evaluation bowls (2.0, 9.0) and (8.5, 1.3) -> [2, 2]."""
        return self.bowls[list(TEST_BOWLS)].clone()

    def task_to_id(self, tasks: torch.Tensor) -> torch.Tensor:
        """Index of the nearest bowl."""
        d = torch.cdist(tasks[..., :2].reshape(-1, 2).float(), self.bowls)
        return d.argmin(-1).reshape(tasks.shape[:-1])

    def set_task(self, mask, tasks):
        self.goal[mask] = tasks.float().reshape(-1, 2)

    def get_task(self):
        return self.goal.clone()

    # ----- dynamics ------------------------------------------------------------------
    def _reset_state(self, mask):
        self.pos[mask] = self.start
        self.collision[mask] = 0.0

    def _obs(self):
        return torch.cat([self.pos, self.collision[:, None]], 1)

    def can_stand(self, xy: torch.Tensor) -> torch.Tensor:
        """[...] bool: may the robot be at positions xy [..., 2] (3 x 3 pixels free, on the map)?"""
        cell = torch.round(xy / PIXEL).long()   # round half to even, like numpy's rint
        inside = ((cell >= 0) & (cell < MAP_PIXELS)).all(-1)
        cell = cell.clamp(0, MAP_PIXELS - 1)
        return inside & self.free[cell[..., 1], cell[..., 0]]

    def step(self, actions):
        a = actions.reshape(self.num_envs, 2).to(self.pos).clamp(-self.max_action, self.max_action)
        dest = self.pos + a
        ok = self.can_stand(dest)
        self.pos = torch.where(ok[:, None], dest, self.pos)
        self.collision = (~ok).float()
        dist = torch.linalg.vector_norm(self.pos - self.goal, dim=1)
        success = (dist < BOWL_RADIUS).float()
        reward = success if self.sparse else -dist
        truncated = self._advance_time()
        info = {"pos": self.pos.clone(), "success": success, "sparse_reward": success, "dense_reward": -dist,
                "collision": self.collision.clone()}
        return self._obs(), reward, torch.zeros_like(truncated), truncated, info

    # ----- plots ---------------------------------------------------------------------
    def plot_rollout(self, rollout, path):
        """The house map, the three bowls (the one with food filled), the start and the path of
        every episode in its own colour."""
        from matplotlib.figure import Figure  # no pyplot: no global backend state
        from matplotlib.patches import Circle

        pos, episode = rollout_xy(rollout)
        fig = Figure(figsize=(5, 5))
        ax = fig.subplots()
        ax.imshow(~self.blocked.cpu().numpy(), cmap="gray", origin="lower", extent=(0, 10, 0, 10), vmin=0, vmax=1)
        food = int(self.task_to_id(torch.as_tensor(np.asarray(rollout["task"]), dtype=torch.float32, device=self.device)))
        for i, (bx, by) in enumerate(BOWLS):
            ax.add_patch(Circle((bx, by), BOWL_RADIUS, fill=i == food, color="orange", alpha=0.8))
        start = np.asarray(START)
        for k in np.unique(episode):
            p = np.concatenate([start[None], pos[episode == k]])
            ax.plot(p[:, 0], p[:, 1], "-", lw=1.0, label=f"episode {int(k) + 1}")
        ax.plot(*START, "bo", ms=4)
        ax.set_xlim(0, 10)
        ax.set_ylim(0, 10)
        ax.set_aspect("equal")
        ax.legend(fontsize=7, loc="upper right")
        ax.set_title(f"return {float(np.sum(rollout['rewards'])):.1f}")
        fig.savefig(path, dpi=80, bbox_inches="tight")
