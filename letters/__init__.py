"""Letters and messages: templates, audience view-models, rendering, the outbox and channels."""
