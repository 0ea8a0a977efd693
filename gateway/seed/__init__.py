"""The reference ``dmv`` schema and its deterministic synthetic data (two RNG streams: base, classified)."""

from gateway.seed.generate import CLASSIFIED_COLUMNS, COLUMNS, SeedError, SeedStats, generate, seed

__all__ = ["CLASSIFIED_COLUMNS", "COLUMNS", "SeedError", "SeedStats", "generate", "seed"]
