"""tagalign-train: frozen CLIP + gated projector trained with multi-tag and contrastive losses."""

__version__ = "0.1.0"
