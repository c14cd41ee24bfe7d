"""Image generators: each turns a batch of ImageRequests into PIL images (see base.py)."""
