"""MAML-TRPO on MIME's hard-exploration 2-D navigation (ring 8 < |g| < 9): the wide ring's settings
(MIME's configs/msc_project) on the harder ring."""
EXTENDS = "nav_wide_ring_maml"
OVERRIDES = {"env_name": "Nav2DHardExploration"}
