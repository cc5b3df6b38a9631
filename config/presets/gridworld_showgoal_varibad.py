"""GridNavi where the goal is shown in the first observation of each episode (grid-show)."""
EXTENDS = "gridworld_varibad"
OVERRIDES = {"env_name": "GridNavi-showgoal"}
