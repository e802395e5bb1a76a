"""Where ATL03/ATL08 granules live and how they are read: assets (local folder, S3), h5coro
access with its fixes, the S3 driver and Earthdata credentials, a granule's beams trimmed to the
request's region (``Beam``), and the ATL08 companion's photon classes.

May import: request.
"""
