"""Code shared by every function of the Instagram DM gateway (built into the shared layer)."""
