"""ComfyUI-AVGen: joint audio + video generation with the LTX-2 model family.

ComfyUI imports this folder as a custom-node pack and reads the two mappings below.
"""
from .nodes import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
