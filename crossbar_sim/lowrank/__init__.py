"""Low-rank training on simulated tiles: GaLore and Online Subspace Descent against full-rank AdamW and
Tiki-Taka, on a small LLaMA-style language model trained on Shakespeare (SPEC sections 5 and 6)."""
from .optim import (AdamWConfig, GaLoreConfig, OptimizerConfig, OSDConfig, WeightUpdate,  # noqa: F401
                    principal_angles)
