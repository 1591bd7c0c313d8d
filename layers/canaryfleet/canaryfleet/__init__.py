"""canaryfleet runtime: models, domain logic and AWS adapters shared by every function."""

__version__ = "0.1.0"
