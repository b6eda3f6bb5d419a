"""magseg: decoder-free field segmentation from VHR imagery with a multimodal LLM (MAgSeg)."""

__version__ = "0.1.0"
