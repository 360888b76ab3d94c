"""Samples: Meta's webhook payloads as the platform documents them (meta), an outbound message of every kind
(outbound), and Hypothesis strategies for whatever else Meta might send (strategies)."""
