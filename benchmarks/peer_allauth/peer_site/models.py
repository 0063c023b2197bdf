"""The audit trail: one row per login (password or DHIS2) and per failed password login, as geologin keeps."""
from django.db import models


class AuditEvent(models.Model):
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    kind = models.CharField(max_length=40)
    username = models.CharField(max_length=150, blank=True)
    ip = models.GenericIPAddressField(null=True)
    detail = models.CharField(max_length=200, blank=True)
