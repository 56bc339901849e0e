"""Training the attention classifier on AudioSet embeddings: data readers, samplers, metrics, loop, stats."""
