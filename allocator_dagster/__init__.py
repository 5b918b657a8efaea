"""allocator-dagster: daily DeFi capital allocation and profit-split governance on Dagster."""

__version__ = "0.1.0"
