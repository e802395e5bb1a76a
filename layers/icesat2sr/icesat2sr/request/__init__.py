"""What a request is: SlideRule's parameters (names, defaults, validation), polygons and their
projections, granule and beam names, time conversions, and the errors a request can raise.

Imports nothing else of icesat2sr.
"""
