"""GridNavi with a distance-shaped reward (hypernetwork papers' grid-dense)."""
EXTENDS = "gridworld_varibad"
OVERRIDES = {"env_name": "GridNavi-dense", "multihead_for_reward": False, "rew_pred_type": "deterministic"}
