"""Models at every edge: events in, state machine inputs, stored records."""
