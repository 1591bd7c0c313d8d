"""HTTP edges of the runtime: the approval page and the Slack app (Powertools' HTTP API resolver)."""
