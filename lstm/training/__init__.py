"""Training a character model: the data, the run, its checkpoints."""
