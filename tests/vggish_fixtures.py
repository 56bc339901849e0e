"""A VGGish checkpoint in the exact official format, built with tf-slim, for tests of every part.

:func:`build_slim_checkpoint` defines Google's network with tf-slim in ``tf.compat.v1`` graph mode under
the official variable scopes (``vggish/conv1/weights`` ... ``vggish/fc2/biases``, input
``vggish/input_features``, output ``vggish/embedding``), initialises it from a seed, saves it with
``tf.compat.v1.train.Saver(write_version=SaverDef.V1)`` (one file, like ``vggish_model.ckpt``) and runs
the slim graph on a fixed set of examples, storing its outputs beside the checkpoint as the reference
a port must reproduce. The result (about 277 MB) is cached under the system temp folder (or
``$AUDIOTAGGER_TEST_CACHE``) keyed by seed and ``_VERSION``, so a test session builds it at most once
per machine; bump ``_VERSION`` when the network definition or the reference examples change.

Weights are He-scaled (and biases non-zero) rather than the original sigma 0.01 so that activations
stay of order one through the 13 layers and a relative comparison means something.

Fixtures (registered in ``tests/conftest.py``): ``vggish_checkpoint`` (path of the ``.ckpt`` file)
and ``vggish_reference`` (dict with ``examples`` (7, 96, 64) and ``embeddings`` (7, 128) from slim).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

SEED = 20170928
"""Default seed of the test checkpoint."""
CACHE_ROOT = Path(os.environ.get("AUDIOTAGGER_TEST_CACHE", Path(tempfile.gettempdir()) / "audiotagger-tests"))
_VERSION = "v1"


def reference_examples(seed: int = SEED) -> np.ndarray:
    """Seven log-mel examples (1 s sine, 2 s chirp, 3 s noise, 1 s silence) through the real front end."""
    from audiotagger.vggish.features import waveform_to_examples

    rng = np.random.default_rng(seed)
    t = np.arange(3 * 16000) / 16000
    sine = 0.5 * np.sin(2 * np.pi * 1000 * t)
    chirp = 0.3 * np.sin(2 * np.pi * (200 + 1200 * t) * t)
    noise = 0.1 * rng.standard_normal(len(t))
    x = np.concatenate([sine[:16000], chirp[16000:], noise, np.zeros(16000)])
    examples = waveform_to_examples(x, 16000, hop=1.0)
    return np.ascontiguousarray(examples[:8], dtype=np.float32)


def _define_vggish_slim(features):
    """Google's ``vggish_slim.define_vggish_slim`` (2020+, pre-activation ``fc2``), names and all."""
    import tensorflow as tf
    import tf_slim as slim

    with slim.arg_scope([slim.conv2d, slim.fully_connected],
                        weights_initializer=tf.compat.v1.variance_scaling_initializer(scale=2.0),
                        biases_initializer=tf.compat.v1.random_normal_initializer(stddev=0.05),
                        activation_fn=tf.nn.relu, trainable=False), \
            slim.arg_scope([slim.conv2d], kernel_size=[3, 3], stride=1, padding="SAME"), \
            slim.arg_scope([slim.max_pool2d], kernel_size=[2, 2], stride=2, padding="SAME"):
        net = tf.reshape(features, [-1, 96, 64, 1])
        net = slim.conv2d(net, 64, scope="conv1")
        net = slim.max_pool2d(net, scope="pool1")
        net = slim.conv2d(net, 128, scope="conv2")
        net = slim.max_pool2d(net, scope="pool2")
        net = slim.repeat(net, 2, slim.conv2d, 256, scope="conv3")
        net = slim.max_pool2d(net, scope="pool3")
        net = slim.repeat(net, 2, slim.conv2d, 512, scope="conv4")
        net = slim.max_pool2d(net, scope="pool4")
        net = slim.flatten(net)
        net = slim.repeat(net, 2, slim.fully_connected, 4096, scope="fc1")
        net = slim.fully_connected(net, 128, activation_fn=None, scope="fc2")
        return tf.identity(net, name="embedding")


def build_slim_checkpoint(folder: Path, seed: int = SEED) -> Path:
    """Build, save (V1) and run the slim VGGish; return the checkpoint path (``folder/vggish_model.ckpt``)."""
    import tensorflow as tf

    folder.mkdir(parents=True, exist_ok=True)
    ckpt = folder / "vggish_model.ckpt"
    examples = reference_examples(seed)
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as sess:
        tf.compat.v1.set_random_seed(seed)
        with tf.compat.v1.variable_scope("vggish"):
            features = tf.compat.v1.placeholder(tf.float32, shape=(None, 96, 64), name="input_features")
            _define_vggish_slim(features)
        sess.run(tf.compat.v1.global_variables_initializer())
        saver = tf.compat.v1.train.Saver(write_version=tf.compat.v1.train.SaverDef.V1)
        saver.save(sess, str(ckpt), write_meta_graph=False)
        out = sess.run(graph.get_tensor_by_name("vggish/embedding:0"),
                       feed_dict={graph.get_tensor_by_name("vggish/input_features:0"): examples})
    np.savez(folder / "reference.npz", examples=examples, embeddings=out)
    return ckpt


def cached_slim_checkpoint(seed: int = SEED) -> Path:
    """Return the cached checkpoint for ``seed``, building it (once, under a lock) when absent."""
    from filelock import FileLock

    folder = CACHE_ROOT / f"vggish-slim-{_VERSION}-seed{seed}"
    ckpt = folder / "vggish_model.ckpt"
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with FileLock(str(CACHE_ROOT / f".vggish-seed{seed}.lock")):
        if ckpt.is_file() and (folder / "reference.npz").is_file():
            return ckpt
        tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=CACHE_ROOT))
        try:
            build_slim_checkpoint(tmp, seed)
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return ckpt


@pytest.fixture(scope="session")
def vggish_checkpoint() -> Path:
    """Path of an official-format (TF1 V1, tf-slim scopes) VGGish checkpoint with seeded weights."""
    pytest.importorskip("tf_slim")
    return cached_slim_checkpoint()


@pytest.fixture(scope="session")
def vggish_reference(vggish_checkpoint) -> dict:
    """The slim graph's outputs for :func:`reference_examples`: ``examples`` and ``embeddings``."""
    with np.load(vggish_checkpoint.parent / "reference.npz") as data:
        return {k: data[k] for k in data.files}
