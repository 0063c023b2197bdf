"""``python -m tests.fakes.dhis2 ...`` (from the repository's root): one fake DHIS2 server (see the package's
docstring). ``python tests/fakes/dhis2 ...`` works too, from anywhere."""
import sys
from pathlib import Path

if not __package__:  # run as a folder: import the package from the repository, not this folder's modules
    sys.path[0] = str(Path(__file__).resolve().parents[3])

from tests.fakes.dhis2.app import main  # noqa: E402

sys.exit(main())
