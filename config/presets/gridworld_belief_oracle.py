"""Belief oracle on GridNavi: the policy sees the exact Bayes belief over goal cells."""
from config.methods import BELIEF_ORACLE

EXTENDS = "gridworld_varibad"
OVERRIDES = {**BELIEF_ORACLE, "policy_num_steps": 30, "policy_entropy_coef": 0.1}
