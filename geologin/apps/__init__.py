"""Applications: what geologin offers other applications that rely on its logins (the OpenID provider,
later forward-auth). keys.py: the provider's signing keys."""
