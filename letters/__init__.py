"""Letters: templates and their manifest, audience view-models, rendering to text, HTML and PDF."""
