"""The peer site of the benchmarks: Django + django-allauth doing geologin's duties (see benchmarks/README.md)."""
