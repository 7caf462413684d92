"""The web's entry point: `gunicorn wsgi:app`."""

import gc

from app import create_app

app = create_app()
# What start-up made (some 145,000 objects: the imports, the app) lives as long as the
# process; frozen, it is out of the collector's way, and a full collection walks only what
# requests left behind instead of pausing a request for 100 ms every few thousand.
gc.freeze()
