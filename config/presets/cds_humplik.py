"""Humplik et al. task decoding on sparse HalfCheetahDir."""
from config.methods import HUMPLIK

EXTENDS = "cds_varibad"
OVERRIDES = {**HUMPLIK}
