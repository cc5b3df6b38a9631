"""Humplik et al. task decoding on sparse AntGoal."""
from config.methods import HUMPLIK

EXTENDS = "sparse_ant_goal_varibad"
OVERRIDES = {**HUMPLIK}
