"""AudioSet release format: ``tf.train.SequenceExample`` records of quantised VGGish embeddings.

Each record is one clip: context features ``video_id`` (bytes), ``start_time_seconds`` and
``end_time_seconds`` (float), ``labels`` (int64 list of indices into ``class_labels_indices.csv``),
and the feature list ``audio_embedding`` holding one 128-byte string (uint8 embedding) per second
(SPEC §3.1). ``audiotagger embed -f tfrecord`` writes it and the training reader reads Google's files
and ours alike through the key constants below. TensorFlow is imported only inside the functions.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .errors import ParameterError
from .fileio import atomic_path
from .params import EMBEDDING_SIZE

VIDEO_ID_KEY = "video_id"
START_TIME_KEY = "start_time_seconds"
END_TIME_KEY = "end_time_seconds"
LABELS_KEY = "labels"
EMBEDDING_KEY = "audio_embedding"
"""Feature-list key (``vggish_params.AUDIO_EMBEDDING_FEATURE_NAME``)."""


def encode_sequence_example(video_id: str, embedding_uint8: np.ndarray, start_time_seconds: float = 0.0,
                            end_time_seconds: float | None = None,
                            labels: Sequence[int] = ()) -> bytes:
    """Serialise one clip as an AudioSet ``SequenceExample``.

    Parameters
    ----------
    video_id : str
        Clip identifier (YouTube id in the release; the file stem for our own files).
    embedding_uint8 : np.ndarray [shape=(n, 128), dtype=uint8]
        Quantised embeddings, one per example.
    start_time_seconds : float
        Start of the clip in its source.
    end_time_seconds : float, optional
        End of the clip; default ``start + n``.
    labels : sequence of int
        Class indices (may be empty for unlabelled audio).

    Returns
    -------
    bytes
        The serialised record.

    Raises
    ------
    ParameterError
        Embedding not uint8 of shape (n, 128).
    """
    import tensorflow as tf

    emb = np.asarray(embedding_uint8)
    if emb.dtype != np.uint8 or emb.ndim != 2 or emb.shape[1] != EMBEDDING_SIZE:
        raise ParameterError(f"{video_id}: embedding must be uint8 (n, {EMBEDDING_SIZE}), "
                             f"got {emb.dtype} {emb.shape}")
    if end_time_seconds is None:
        end_time_seconds = float(start_time_seconds) + len(emb)
    feature = tf.train.Feature
    context = tf.train.Features(feature={
        VIDEO_ID_KEY: feature(bytes_list=tf.train.BytesList(value=[str(video_id).encode("utf-8")])),
        START_TIME_KEY: feature(float_list=tf.train.FloatList(value=[float(start_time_seconds)])),
        END_TIME_KEY: feature(float_list=tf.train.FloatList(value=[float(end_time_seconds)])),
        LABELS_KEY: feature(int64_list=tf.train.Int64List(value=[int(v) for v in labels])),
    })
    rows = [feature(bytes_list=tf.train.BytesList(value=[row.tobytes()]))
            for row in np.ascontiguousarray(emb)]
    lists = tf.train.FeatureLists(feature_list={EMBEDDING_KEY: tf.train.FeatureList(feature=rows)})
    return tf.train.SequenceExample(context=context, feature_lists=lists).SerializeToString()


def decode_sequence_example(serialized: bytes) -> dict:
    """Parse one AudioSet ``SequenceExample`` (the inverse of :func:`encode_sequence_example`).

    Parameters
    ----------
    serialized : bytes
        One record.

    Returns
    -------
    dict
        ``video_id`` str, ``start_time_seconds`` float, ``end_time_seconds`` float, ``labels``
        int64 (k,), ``audio_embedding`` uint8 (n, 128).
    """
    import tensorflow as tf

    ex = tf.train.SequenceExample.FromString(serialized)
    ctx = ex.context.feature
    rows = ex.feature_lists.feature_list[EMBEDDING_KEY].feature
    emb = np.frombuffer(b"".join(f.bytes_list.value[0] for f in rows), np.uint8)
    return {
        VIDEO_ID_KEY: ctx[VIDEO_ID_KEY].bytes_list.value[0].decode("utf-8"),
        START_TIME_KEY: float(ctx[START_TIME_KEY].float_list.value[0]),
        END_TIME_KEY: float(ctx[END_TIME_KEY].float_list.value[0]),
        LABELS_KEY: np.array(ctx[LABELS_KEY].int64_list.value, np.int64),
        EMBEDDING_KEY: emb.reshape(-1, EMBEDDING_SIZE),
    }


def write_tfrecord(path: str | os.PathLike, serialized_examples: Iterable[bytes], *,
                   overwrite: bool = True) -> Path:
    """Write serialised records to a TFRecord file atomically (uncompressed, like the release).

    Parameters
    ----------
    path : path-like
        Destination.
    serialized_examples : iterable of bytes
        Records, e.g. from :func:`encode_sequence_example`.
    overwrite : bool
        See :func:`audiotagger.fileio.atomic_path`.

    Returns
    -------
    pathlib.Path
    """
    import tensorflow as tf

    with atomic_path(path, overwrite=overwrite) as tmp:
        with tf.io.TFRecordWriter(str(tmp)) as writer:
            for record in serialized_examples:
                writer.write(record)
    return Path(path)


def read_tfrecord(path: str | os.PathLike) -> list[dict]:
    """Read every record of a TFRecord file with :func:`decode_sequence_example`."""
    import tensorflow as tf

    return [decode_sequence_example(r.numpy()) for r in tf.data.TFRecordDataset(str(path))]
