"""Live tagging (``audiotagger listen``): microphones, network streams and stdin, one step at a time.

:func:`listen` is the Python API (a generator of :class:`LiveResult`); :class:`Listener` also keeps the
whole run for the ``.npz``; :mod:`.sources` builds the ffmpeg input; :mod:`.outputs` writes the growing
SRT/TSV files and the stdout lines; :mod:`.alerts` fires alerts with a hold-off.
"""

from .session import Gap, Listener, LiveResult, Tag, listen

__all__ = ["Gap", "Listener", "LiveResult", "Tag", "listen"]
