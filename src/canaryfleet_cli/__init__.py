"""The `canaryfleet` command for operators and developers."""
