"""``audiotagger embed``: VGGish embeddings of audio/video files (parser filled in by the frontend work)."""

from __future__ import annotations


def add_parser(sub) -> None:
    """Register the ``embed`` subcommand."""
    p = sub.add_parser("embed", help="compute AudioSet VGGish embeddings")
    p.add_argument("inputs", nargs="+", metavar="IN")
    p.set_defaults(func=run)


def run(args) -> int:
    """Run ``embed``."""
    raise NotImplementedError
