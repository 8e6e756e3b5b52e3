"""Training: examples from the corpora, the spaCy CNN and the MiniLM token classifier."""
