"""The sender: bounded, batched, retried, optionally durable delivery of events.

CONTRACT STUB — to be implemented (helper "delivery"). The public names and signatures
below are fixed; blocks, benchmarks and tests are written against them.

    from vision_events_blocks.delivery import get_sender, ImageAttachment, SenderConfig

    sender = get_sender(api_url="http://127.0.0.1:8787", api_key="...")   # process-wide, shared
    event_id = sender.submit(
        VisionEvent(...) or dict,            # images=[] — the sender fills them in
        images=[ImageAttachment(input=frame_bgr, output=visualisation_bgr, label="line-3")],
        predictions=sv_detections_or_classification_dict_or_None,   # mapped onto images[0].input
    )                                        # returns at once: no encoding, no I/O
    sender.flush(timeout=5.0) -> bool        # True when everything submitted is delivered/persisted
    sender.stats() -> dict                   # see SenderStats
    sender.close(timeout=5.0)
"""
