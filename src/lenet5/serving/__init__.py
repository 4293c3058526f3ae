"""Serving: the web app, connection limits, uploads, corrections and learning routes."""
