"""The science, arrays in and arrays out, no I/O: photon selection, YAPC, along-track extents, the
ATL06-SR fit, and the result tables (numpy structured arrays in SlideRule's record layouts).

May import: granules (the ``Beam`` it works on), request.
"""
