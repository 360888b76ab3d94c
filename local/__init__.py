"""The local stack: the template's resources in an embedded AWS emulator, and the real handlers."""
