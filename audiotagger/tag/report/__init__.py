"""The interactive HTML report (``-f html``) and the folder index page.

:func:`write_page` writes one self-contained page per result (inline script, styles and compact data; no
network request); :func:`write_index` writes ``index.html`` over the pages of a folder. The page's script
(``assets/report.js``) re-selects tags in the browser with the rules of :mod:`audiotagger.tag.select`.
"""

from .index import write_index
from .page import read_index_entry, render_page, write_page

__all__ = ["read_index_entry", "render_page", "write_index", "write_page"]
