"""One seed of ``mime_wide_ring`` (the four MAML-family variants at the seed's settings)."""
from experiments.catalog.mime_wide_ring import SET as _FULL

SET = dict(_FULL, description=_FULL["description"] + " (one seed)", seeds=[1])
