"""Configurators: raw simulation dicts -> float32 network inputs."""
