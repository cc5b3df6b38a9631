"""VariBAD on HopperRandParams (the reference had no config: the walker settings)."""
EXTENDS = "walker_varibad"
OVERRIDES = {"env_name": "HopperRandParams"}
