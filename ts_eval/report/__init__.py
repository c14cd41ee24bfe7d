"""Tables and plots from run summaries."""
