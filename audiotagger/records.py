"""The AudioSet embedding TFRecord format (``tf.train.SequenceExample``), as released by Google.

Context features ``video_id`` (bytes), ``start_time_seconds`` and ``end_time_seconds`` (float), ``labels``
(int64 list, indices into ``class_labels_indices.csv``); feature list ``audio_embedding``: one bytes feature
of 128 uint8 values per second.
"""

VIDEO_ID_KEY = "video_id"
START_TIME_KEY = "start_time_seconds"
END_TIME_KEY = "end_time_seconds"
LABELS_KEY = "labels"
EMBEDDING_KEY = "audio_embedding"
