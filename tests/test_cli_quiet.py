import subprocess
import sys

SCRIPT = """
import os, sys
from audiotagger.cli.quiet import quiet_tensorflow_import
quiet_tensorflow_import()
import tensorflow as tf
os.write(2, b"after import\\n")
print(float(tf.constant(2.0) + 1))
"""


def test_tensorflow_banner_is_filtered_but_other_stderr_kept():
    out = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "3.0"
    assert "oneDNN" not in out.stderr and "absl::InitializeLog" not in out.stderr
    assert "after import" in out.stderr


def test_filter_keeps_unknown_lines():
    from audiotagger.cli.quiet import _NOTICE

    assert _NOTICE.match(b"I0000 00:00:1795258791.065144    7345 port.cc:153] oneDNN custom operations")
    assert _NOTICE.match(b"WARNING: All log messages before absl::InitializeLog() is called are written")
    assert not _NOTICE.match(b"E0000 00:00:1.0 1 cuda_dnn.cc:8] something real went wrong")
    assert not _NOTICE.match(b"Traceback (most recent call last):")
