"""gunicorn settings of the peer site: geologin's own file (geologin/gunicorn_conf.py) read as it is, so both
apps run under the same settings (workers, gthread, threads, timeouts) without importing geologin's package."""
from pathlib import Path

exec(compile((Path(__file__).resolve().parents[2] / "geologin" / "gunicorn_conf.py").read_text(),
             "geologin/gunicorn_conf.py", "exec"))
