"""SlideRule's HTTP API and the serverless jobs: transport-neutral routes, the local server behind
``icesat2sr serve``, API Gateway's limits, and the job logic the Lambda handlers call.

May import: engine, discovery, formats and everything below; never client.
"""
