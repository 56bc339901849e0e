"""VGGish constants, named as in Google's ``vggish_params.py`` (SPEC §2.1).

The feature and network values are the ones the released model and the AudioSet embeddings were
made with: changing any of them breaks parity with Google's features. Only the example hop is a
free choice (:data:`EXAMPLE_HOP_SECONDS`; audiotagger defaults to 1.00 s, see SPEC §2.7).
"""

# Architectural constants.
NUM_FRAMES = 96
"""Frames in one example (0.96 s)."""
NUM_BANDS = 64
"""Mel bands per frame."""
EMBEDDING_SIZE = 128
"""Width of the embedding (the output of ``fc2``)."""

# Hyperparameters of the log-mel front end.
SAMPLE_RATE = 16000
STFT_WINDOW_LENGTH_SECONDS = 0.025
STFT_HOP_LENGTH_SECONDS = 0.010
NUM_MEL_BINS = NUM_BANDS
MEL_MIN_HZ = 125
MEL_MAX_HZ = 7500
LOG_OFFSET = 0.01
"""Offset added before the natural log, to stabilise it (YAMNet uses 0.001: do not mix)."""
EXAMPLE_WINDOW_SECONDS = 0.96
"""Each example covers 96 frames (plus the 15 ms tail of the last frame's window)."""
EXAMPLE_HOP_SECONDS = 0.96
"""Google's example hop; audiotagger's default is :data:`DEFAULT_HOP_SECONDS`."""

# Derived sizes, in samples and frames (integers, so that framing never rounds).
STFT_WINDOW_LENGTH_SAMPLES = 400
STFT_HOP_LENGTH_SAMPLES = 160
FFT_LENGTH = 512
"""Next power of two >= the window length; 257 spectrum bins."""
NUM_SPECTRUM_BINS = FFT_LENGTH // 2 + 1
EXAMPLE_SAMPLES = STFT_WINDOW_LENGTH_SAMPLES + (NUM_FRAMES - 1) * STFT_HOP_LENGTH_SAMPLES
"""15 600 samples (0.975 s): the shortest input that makes one example."""

DEFAULT_HOP_SECONDS = 1.0
"""Example hop used by audiotagger: one example per second, aligned to whole seconds (100 frames)."""
FINAL_PARTIAL_MIN_SECONDS = 0.5
"""Tagging (hop 1 s): audio left after the last whole example is tagged as one more second, zero-padded
like a file shorter than one example, when at least this long; a shorter tail is too little to mean
something and is left out (it still counts in the duration)."""
COMPAT_KEEP_SECONDS = 0.96
"""``--compat-truncate``: the part of each second the old tagger kept (``truncateAudioFs``, SPEC §2.7)."""

# Post-processing (PCA + quantisation).
PCA_EIGEN_VECTORS_NAME = "pca_eigen_vectors"
PCA_MEANS_NAME = "pca_means"
QUANTIZE_MIN_VAL = -2.0
QUANTIZE_MAX_VAL = +2.0

# Training hyperparameters of the original model (only relevant to re-initialisation).
INIT_STDDEV = 0.01
LEARNING_RATE = 1e-4
ADAM_EPSILON = 1e-8

# Names of the official TF1 graph and checkpoint.
VGGISH_SCOPE = "vggish"
INPUT_OP_NAME = "vggish/input_features"
INPUT_TENSOR_NAME = INPUT_OP_NAME + ":0"
OUTPUT_OP_NAME = "vggish/embedding"
OUTPUT_TENSOR_NAME = OUTPUT_OP_NAME + ":0"
AUDIO_EMBEDDING_FEATURE_NAME = "audio_embedding"

CHECKPOINT_VARIABLES = {
    "vggish/conv1/weights": (3, 3, 1, 64),
    "vggish/conv1/biases": (64,),
    "vggish/conv2/weights": (3, 3, 64, 128),
    "vggish/conv2/biases": (128,),
    "vggish/conv3/conv3_1/weights": (3, 3, 128, 256),
    "vggish/conv3/conv3_1/biases": (256,),
    "vggish/conv3/conv3_2/weights": (3, 3, 256, 256),
    "vggish/conv3/conv3_2/biases": (256,),
    "vggish/conv4/conv4_1/weights": (3, 3, 256, 512),
    "vggish/conv4/conv4_1/biases": (512,),
    "vggish/conv4/conv4_2/weights": (3, 3, 512, 512),
    "vggish/conv4/conv4_2/biases": (512,),
    "vggish/fc1/fc1_1/weights": (12288, 4096),
    "vggish/fc1/fc1_1/biases": (4096,),
    "vggish/fc1/fc1_2/weights": (4096, 4096),
    "vggish/fc1/fc1_2/biases": (4096,),
    "vggish/fc2/weights": (4096, EMBEDDING_SIZE),
    "vggish/fc2/biases": (EMBEDDING_SIZE,),
}
"""The 18 variables of the official checkpoint and their shapes (SPEC §2.8; 72 141 184 values)."""

FLOPS_PER_EXAMPLE = 1.728e9
"""Floating-point operations of one forward pass of one example (multiply-adds counted twice)."""
