"""Report figures: one module per figure family, each a function of a Review to a saved Figure."""
