"""The data layer: canonical schema, validation, loaders and the synthetic generator."""
