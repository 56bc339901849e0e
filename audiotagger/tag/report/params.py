"""Constants of the interactive HTML report (``-f html``) and the folder index page."""

PAGE_FORMAT = "audiotagger-report-1"
"""Identifier stored in every page's data block (the index page reads pages that carry it)."""

QUANT_LEVELS = 65534
"""Probabilities are stored as uint16 ``q = round(p * QUANT_LEVELS) + 1``; ``q = 0`` marks "not stored"."""

THRESHOLD_STEP = 0.01
"""Step of the page's threshold slider; every multiple of it selects exactly like ``tag --threshold``."""

THRESHOLD_FLOOR = 0.01
"""Lowest slider value (or the run's threshold when lower). Probabilities under it are never shown, so
they are not stored (except each step's best ``COMPAT_KEEP``, which the ``--compat`` rule may show)."""

COMPAT_KEEP = 5
"""Best classes of every step kept whatever their probability (the original rule shows 3 to 5)."""

HEATMAP_ROWS = 20
"""Heatmap rows when the page opens: the classes with the highest probability anywhere in the file."""

MAX_TOP_K = 20
"""Largest top-k the page's control offers (and at least the run's own)."""

EMBED_CODEC = ("libopus", "24k", "webm", "audio/webm")
"""``--embed-media``: encoder, bitrate (constrained VBR), container and MIME type of the embedded audio
track (mono): about 200 kB per minute, 270 kB as base64 in the page."""

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mkv", ".webm", ".mov", ".ogv", ".avi"})
"""Media shown in a ``<video>`` element (everything else gets an ``<audio>`` player)."""

INDEX_NAME = "index.html"
"""The folder index written by a run over several inputs with ``-f html``."""
