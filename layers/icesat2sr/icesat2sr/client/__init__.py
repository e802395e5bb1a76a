"""What a user holds: the ``icesat2`` module (SlideRule's client API, embedded or against a server)
and the along-track plot.

May import: engine, discovery, formats and everything below; never service.
"""
