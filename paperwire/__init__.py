"""paperwire: a self-hosted daily paper feed."""
