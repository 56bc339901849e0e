"""Project-wide constants: the AudioSet label space and the tagger's defaults.

VGGish's own constants live in :mod:`audiotagger.vggish.params` (named as in Google's
``vggish_params.py``); PANNs' in :mod:`audiotagger.panns.params`. The CLI's ``--help`` and the README
quote the defaults below, so change them here only.
"""

NUM_CLASSES = 527
"""Number of AudioSet classes (``class_labels_indices.csv``)."""

SPEECH_MID = "/m/09x0r"
"""Class 0, hidden unless ``--show-music-speech`` (SPEC §6.3)."""
MUSIC_MID = "/m/04rlf"
"""Class 137, hidden unless ``--show-music-speech``."""
SILENCE_MID = "/m/028v0c"
"""Class 500; in ``--compat`` selection it replaces every other tag of its second."""

CLIP_SECONDS = 10
"""Rows per classifier input: AudioSet clips are 10 one-second embeddings."""
EMBEDDING_SIZE = 128
"""Width of one AudioSet (PCA-quantised VGGish) embedding."""

DEFAULT_LEFT = 3
"""Seconds of context before the current one (README example of the original tool)."""
DEFAULT_RIGHT = 1
"""Seconds of context after the current one."""
DEFAULT_THRESHOLD = 0.1
"""Minimum probability for a class to be shown."""
DEFAULT_TOP_K = 5
"""Most classes shown per second."""
ONNX_PANNS_BATCH = 64
"""PANNs windows per call on ONNX Runtime (the late blocks see them all at once; early blocks 8 at a time)."""
TAG_BATCH_SIZE = 1024
"""Context windows per classifier call when tagging."""
OUTPUT_FORMATS = ("srt", "vtt", "tsv", "csv", "json", "npz", "txt", "png", "mp4", "html")
"""Every ``tag -f`` choice, in the order ``all`` writes them."""
MEDIA_EXTENSIONS = frozenset(
    ".wav .wave .flac .ogg .oga .opus .mp3 .m4a .aac .wma .aif .aiff .au .caf .mka "
    ".mp4 .m4v .mkv .webm .mov .avi .wmv .flv .mpg .mpeg .ts .3gp".split()
)
"""Extensions picked up when a directory is given as input (explicit files may have any)."""
DEFAULT_OUTPUT_FORMATS = ("srt", "npz")
"""Written when ``-f`` is not given: the subtitles and the probability matrix (to re-render the rest)."""

LAZY_H5_BYTES = 2 * 2**30
"""A packed ``.h5`` training file larger than this is memory-mapped even without ``--lazy``, and TFRecord
files larger than this in all are packed once into the cache and memory-mapped (AudioSet's unbal_train is
2.6 GB as uint8)."""

DEFAULT_BATCH_SIZE = 500
"""Training batch size (all published trainers)."""
DEFAULT_HIDDEN_UNITS = 600
"""Hidden units of the multi-level attention model (Yu et al. 2018)."""
DEFAULT_DROPOUT = 0.4
"""Dropout of the multi-level attention model."""
DEFAULT_LEVELS = (2, 3)
"""Attention heads used by default (Yu et al. 2018)."""
SAMPLERS = ("balanced", "shuffled")
"""``train --sampler`` choices (here so that ``--help`` needs no numpy)."""
STATS_FORMATS = ("table", "csv", "json")
"""``stats -f`` choices."""

# --- custom models (``audiotagger train --audio``) ---------------------------------------------------------
PANNS_EMBED_WINDOW = 1.0
"""Seconds of audio behind one PANNs backbone row (``fc1`` of one window)."""
PANNS_EMBED_HOP = 1.0
"""Seconds between PANNs backbone rows."""
CUSTOM_BACKBONE = "vggish"
"""Default ``--backbone`` of ``train --audio``/``--audio-csv``."""
CUSTOM_BATCH_SIZE = 128
"""Training batch size of custom models (user data sets are small)."""
CUSTOM_ITERATIONS = 600
"""Default ``--iterations`` of custom models."""
CUSTOM_EVAL_EVERY = 50
"""Default ``--eval-every`` of custom models."""
EMBEDDING_CACHE_DIR = "embeddings"
"""Sub-folder of the model cache where backbone embeddings of training audio are kept by content hash."""
VALIDATION_FOLD = "validation"
"""csv ``fold`` value of the validation clips (``--validation-fold``); ``val`` and ``eval`` also match."""
TEST_FOLD = "test"
"""csv ``fold`` value of the test clips (``--test-fold``)."""
CSV_LABEL_SEPARATOR = ";"
"""Between the labels of one clip in ``--audio-csv`` (multi-label data)."""
