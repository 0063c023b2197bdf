"""Local accounts: users, passwords, the first run, and the signed-in user's own pages."""
