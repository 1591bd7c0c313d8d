"""AWS behind small adapters: logic depends on the abstract classes, handlers pick the AWS ones."""
