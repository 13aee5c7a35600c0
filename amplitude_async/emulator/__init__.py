"""A local Amplitude: Identify, HTTP V2, Batch and User Profile APIs on 127.0.0.1."""

__all__: list[str] = []
