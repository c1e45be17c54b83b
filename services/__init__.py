"""The use cases: each runs in one unit of work, on behalf of an actor, and asks the one
authorisation module whether that actor may act."""
