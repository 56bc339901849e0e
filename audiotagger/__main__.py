"""``python -m audiotagger``."""

from .cli import main

raise SystemExit(main())
