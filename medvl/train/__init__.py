"""Training: the YAML config, batching and the accelerate loop (`medvl train`)."""
