"""BASELINES, never shipped: the usual ways canaryfleet is measured against.

polling_rollout: a rollout state machine that polls CodeDeploy and bakes with a plain Wait.
polling_drain: one Lambda invocation per lifecycle event that polls its one SSM command.
"""
