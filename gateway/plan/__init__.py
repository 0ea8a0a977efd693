"""The plan stage: from SQL text and a profile to what runs, as a tuple of small pure passes.

    analyze (gateway.analyzer) -> decide (gateway.policy) -> mask, names (gateway.rewrite)

``passes.PASSES`` lists them; ``fresh.plan_fresh`` runs them over every statement of a request (the
pure entry point, also fit for a worker process); ``cache.Analyzer`` puts the exact-text and shape
caches in front of it.
"""
