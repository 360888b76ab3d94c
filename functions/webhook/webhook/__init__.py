"""The webhook function: Meta's verification handshake and signed Instagram event ingestion."""
