"""How result tables are encoded: SlideRule's binary record stream (wire), GeoDataFrames, and
files (GeoParquet with or without GeoPandas, CSV, HDF5) with the callback writers.

May import: science (the result tables), request.
"""
