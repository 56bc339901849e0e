"""Keep TensorFlow's start-up banner (absl/oneDNN INFO lines) off the CLI's stderr.

TensorFlow 2.21 writes these lines from C++ while it is imported, whatever ``TF_CPP_MIN_LOG_LEVEL`` says.
The CLI installs a meta-path hook that runs the first ``import tensorflow`` with file descriptor 2
redirected to a temporary file; afterwards every captured line that is not a known start-up notice is
written back, so real warnings and import errors still reach the user. Library users are unaffected.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import re
import sys
import tempfile

_NOTICE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\)"
    rb"|I\d{4} [\d:.]+\s+\d+ (port|cpu_feature_guard)\.cc:\d+\]"
    rb"|To enable the following instructions: .* rebuild TensorFlow)"
)


class _Loader(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader) -> None:
        self._inner = inner

    def create_module(self, spec):
        return self._inner.create_module(spec)

    def exec_module(self, module) -> None:
        sys.stderr.flush()
        saved = os.dup(2)
        with tempfile.TemporaryFile() as tmp:
            os.dup2(tmp.fileno(), 2)
            try:
                self._inner.exec_module(module)
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                tmp.seek(0)
                kept = [line for line in tmp.read().splitlines(keepends=True) if not _NOTICE.match(line)]
                if kept:
                    os.write(2, b"".join(kept))


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


def quiet_tensorflow_import() -> None:
    """Silence TensorFlow's start-up notices for the rest of this process (no-op if already imported)."""
    if "tensorflow" not in sys.modules and not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
