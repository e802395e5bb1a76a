"""icesat2sr: SlideRule's ICESat-2 ATL03 -> ATL06-SR processing in Python.

The science (parameters, granule reading through h5coro, photon selection, extents, the
ATL06-SR fit, records) runs the same embedded on a laptop and inside AWS Lambda. Modules that
need AWS, GeoPandas or plotting import them lazily so the Lambda layer stays small and fast.
"""

__version__ = "0.1.0"
