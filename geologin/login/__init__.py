"""Logging in: the login page, password and external logins, sessions, throttling (docs/architecture.md)."""
