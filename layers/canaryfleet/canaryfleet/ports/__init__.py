"""What the logic needs from the outside world, as Protocols.

Logic depends on these ports only; ``canaryfleet.adapters`` implements them on AWS, and the
unit tests' fakes (``tests/unit/fakes.py``, ``tests/unit/drain_fakes.py``) implement them in
memory. One module a capability: ``rollouts`` (record, queue and lock, releases, deployment
records), ``fleet`` (CodeDeploy, traffic, target health, metrics, the registry), ``workflow``
(task-token callbacks, executions), ``approvals``, ``drains``, ``notify``, ``notifier``,
``artifacts`` and ``clock``.
"""
