"""The server's routes, one router per subject; :func:`..app.create_app` includes them.

* :mod:`.events`      ingestion: events, batches, uploads, bundles, and the image URLs;
* :mod:`.use_cases`   queries, use cases and their metadata schema;
* :mod:`.event_store` ``/v2/events``, the edge Event Store endpoint;
* :mod:`.admin`       health, and (opt-in) fault injection and the request log.

A router states each route's scope with :func:`..deps.needs`, reads the body and hands it to
:class:`..service.Service`; errors are shaped in :mod:`..errors`. A new router (the viewer,
say) is added in one place: :func:`vision_events_blocks.server.app.include_routers`.
"""
