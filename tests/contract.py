"""The plugin kit's contract (geologin.providers.testing) on this repository's fixtures, so the contract
runs on SQLite and on PostgreSQL like the rest of the suite."""
import pytest


class RepoContract:
    @pytest.fixture
    def contract_app(self, app_factory):
        return app_factory(**self.app_config())
