"""Constants of the archive driver (quoted by ``--help`` and the README)."""

MANIFEST_NAME = "_manifest.parquet"
"""The run manifest, written in the output folder."""
MANIFEST_INTERVAL = 10.0
"""Seconds between atomic rewrites of the manifest during a run (also at the end and on Ctrl-C)."""
MANIFEST_WRITE_SHARE = 0.05
"""At most this share of the driver's time goes to rewriting the manifest (large manifests are rewritten
less often than every :data:`MANIFEST_INTERVAL`)."""
DEFAULT_SHARD_SIZE = 1000
"""Clips per TFRecord shard of ``embed --ray -f tfrecord``."""
MEMORY_SHARE = 0.8
"""Share of a machine's memory its workers may take together when ``--memory-per-worker`` is not given
(the rest: Ray's own processes, the object store's pages, the file system cache)."""
WARMUP_SECONDS = 10.0
"""Seconds of silence each worker runs through its backend once loaded, before its memory limit is set."""
MAX_TASK_RETRIES = 3
"""Times a file is retried on a fresh worker after its worker process died (killed, out of memory)."""
LIST_CHUNK = 50_000
"""Input-list lines handled at once by the driver (validation, final bookkeeping)."""
STATUSES = ("done", "failed", "skipped", "pending")
"""Manifest status values: ``pending`` = not finished (interrupted run, or not selected by the mode)."""
URL_SCHEMES = ("s3", "gs", "gcs", "az", "abfs", "http", "https", "hdfs", "memory")
"""Schemes accepted for inputs and ``-o`` besides local paths and ``file://``."""
