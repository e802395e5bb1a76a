"""icesat2sr: SlideRule's ICESat-2 science (ATL03 -> ATL06-SR) in Python, embedded or serverless.

The package is layered; each subpackage may import only those below it (docs/architecture.md,
enforced by import-linter in ``make lint``)::

    cli, bench                 the ``icesat2sr`` command
    service | client           SlideRule's HTTP API and serverless jobs | what a user holds
    engine | discovery | formats | synth
    science                    arrays in, arrays out: selection, YAPC, extents, fit, records
    granules                   where ATL03/ATL08 live and how they are read (h5coro)
    request                    what a request is: parameters, polygons, names, time, errors

``from icesat2sr import icesat2`` gives the user-facing client (SlideRule's ``icesat2`` module).
Heavy or optional dependencies (boto3, geopandas, pyarrow, matplotlib) are imported where used,
so the Lambda worker's import stays small.
"""

__version__ = "0.1.0"


def __getattr__(name: str):
    # The client is imported on first use, not by every `import icesat2sr` (Lambda cold starts).
    if name == "icesat2":
        from .client import icesat2

        return icesat2
    raise AttributeError(f"module 'icesat2sr' has no attribute {name!r}")
