"""PANNs backend: CNN14 / CNN10 / CNN6 (Kong et al. 2020) on 32 kHz log-mel, in Keras.

Modules: :mod:`~audiotagger.panns.params` (constants), :mod:`~audiotagger.panns.frontend` (log-mel),
:mod:`~audiotagger.panns.models` (Keras networks), :mod:`~audiotagger.panns.pth` (restricted reader of
PyTorch checkpoints), :mod:`~audiotagger.panns.checkpoint` (state dict → Keras, conversion cache) and
:mod:`~audiotagger.panns.tagging` (sliding-window :class:`~audiotagger.panns.tagging.PannsTagger`).
Nothing heavy is imported here.
"""
