"""Renderers: one protocol (base.py), the preview animatic and the MultiTalk model."""
