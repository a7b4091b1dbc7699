"""The web front: a REST API and a results browser, one process speaking to the mesh over NATS.

`app.create_app` builds the ASGI app (Litestar), `serve.serve` runs it with Hypercorn until a
stop event; `sluice web` and `sluice up` call the latter.
"""
