"""Which granules a request covers: names, time windows and the exact polygon test, the per-folder
catalogue, and NASA CMR search for ``nsidc-s3``.

May import: granules, request.
"""
