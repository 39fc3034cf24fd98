"""The demo of the main job on the local stack: ``python -m include.demo``."""
