"""Groups: local groups an administrator fills by hand, and groups mapped from what identity providers say
about a person. Applications see a person's groups in the ``groups`` claim and the Remote-Groups header."""
