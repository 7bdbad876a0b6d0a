"""The error nodes raise for bad inputs: a ValueError whose message starts with the node id."""
from __future__ import annotations


class NodeInputError(ValueError):
    """`NodeInputError("AVGenEmptyAVLatent", "width 500 is not a multiple of 32")` -> "AVGenEmptyAVLatent: width
    500 is not a multiple of 32". `node` keeps the node id for callers that want it."""

    def __init__(self, node: str, message: str):
        super().__init__(f"{node}: {message}")
        self.node = node


class NodeDependencyError(RuntimeError):
    """A node needs an optional module that cannot be imported: "AVGenAudioEncode: the audio encoder's mel
    spectrogram needs torchaudio, which cannot be imported here (...). Fix: pip install ..."."""

    def __init__(self, node: str, message: str):
        super().__init__(f"{node}: {message}")
        self.node = node
