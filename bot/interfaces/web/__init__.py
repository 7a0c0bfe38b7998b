"""The web server: the residents' page at / and the staff console at /staff (server.py puts them together)."""
