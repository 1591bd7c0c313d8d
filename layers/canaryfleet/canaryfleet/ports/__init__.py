"""What the logic needs from the outside world, as Protocols.

Logic depends on these ports only; ``canaryfleet.adapters`` implements them on AWS, and the
unit tests' fakes (``tests/unit/fakes.py``) implement them in memory. One module a capability:
``rollouts`` (record, queue and lock, releases, deployments), ``fleet`` (CodeDeploy, traffic,
target health, metrics), ``workflow`` (task-token callbacks, executions), ``drains``,
``approvals``, ``notify``, and ``clock``.
"""
