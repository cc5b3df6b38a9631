"""Humplik et al. task decoding on Mountain Treasure."""
from config.methods import HUMPLIK

EXTENDS = "treasure_hunt_varibad"
OVERRIDES = {**HUMPLIK, "decode_state": False}
