"""Imagery sources: turn an image request (bounds in metres, size in pixels) into RGB pixels.

Each source implements `fetch(request, payload) -> Fetched`; `payload` is what the source's
`prepare` read from the database in the main process (the render source's OSM features), so the
fetch itself runs in any worker without a database.
"""
