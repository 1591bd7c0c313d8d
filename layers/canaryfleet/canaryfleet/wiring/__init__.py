"""The one place that builds services from settings: a factory per function.

A handler reads its settings, parses its event, asks the wiring for its service and makes
one call. Adapters are constructed here and nowhere else (not in logic, not in handlers).
One module a capability: ``rollouts``, ``approvals``, ``drains``, ``notify``.
"""
