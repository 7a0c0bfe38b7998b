"""Interfaces: the CLI (first), the web page, feedback, the staff library, throttling."""
