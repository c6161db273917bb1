"""The sink's descriptions for the Workflows UI (kept apart: the block module stays about behaviour)."""

SHORT_DESCRIPTION = "Deliver Vision Events reliably from a live pipeline without stalling it."

LONG_DESCRIPTION = """
Send a Vision Event (with the frame, the visualisation and the annotations) to the Roboflow
Vision Events API — or to any server that speaks it, an edge Event Store, or bundle files
for air-gapped sites — from inside a live video pipeline.

## What to send

- **From a builder block**: connect `event` to the output of *Vision Events Quality Check*,
  *Safety Alert* or *Inventory Count*. When the builder has nothing to report for a frame its
  event is empty and this sink is skipped for that frame.
- **Directly**: leave `event` empty and set `event_type` plus `event_data` (wire field names
  of the API, camelCase or snake_case): e.g. `custom` with `{"value": "door opened"}` or
  `operator_feedback` with `{"relatedEventId": "$inputs.event_id", "feedback": "incorrect"}`
  and a `comment`.

`image` is the frame the annotations refer to; `output_image` (e.g. a visualisation) is the
image shown first. `predictions` become the annotations when the event does not already
carry its own (builders attach the detections they are about).

## How it is delivered

`run()` only validates and enqueues: the `event_id` output is known at once, even in
fire-and-forget mode. A process-wide sender (one per destination, shared by every sink
and every HTTP request) encodes images on its own threads, uploads each image once, batches
up to 100 events per request, retries network errors, 429 and 5xx with backoff honouring
`Retry-After`, and keeps memory bounded. Events are also written to a local SQLite outbox
(durable by default: `VISION_EVENTS_OUTBOX_DIR`, else inference's model cache directory;
`outbox_dir: "off"` keeps them in memory only), so they survive SIGTERM, a crash, a power cut
or a day offline; several workers share the directory, each in a slot of its own. A video
file, an HTTP request or a script waits for the sender when memory is full instead of losing
images; only a live stream that outruns the machine gets smaller images, then none.
Remaining events are flushed when the pipeline ends or the process exits.

## Where it goes (`destination`)

- **`cloud`** (default): the Vision Events API at `api_url` with the workflow's API key.
- **`event_store`**: an edge Event Store (Roboflow's on-device Event Ingestion Service) at
  `event_store_url` (default `VISION_EVENTS_EVENT_STORE_URL`, else `http://localhost:8001`),
  `POST /v2/events` with the images inline and the key from `EVENT_INGESTION_API_KEY` (no
  Roboflow key needed). One event per request; **529** (the device applies back-pressure)
  makes the sender wait (`Retry-After`, else backoff) and retry — counted, never a lost event.
- **`bundle`**: air-gapped sites. One bundle-format-v1 file (`event_<ts>_<eventId>.tar.gz`,
  the built-in `vision_event_bundle@v1` format) per event in `bundle_dir` (default
  `VISION_EVENTS_BUNDLE_DIR`), written atomically (dot-temp file, fsync, link); 25 MiB cap
  (a larger event is a dead letter with the reason). Honours
  `ALLOW_WORKFLOW_BLOCKS_ACCESSING_LOCAL_STORAGE` and `WORKFLOW_BLOCKS_WRITE_DIRECTORY`.
  `vision-events bundle upload` later delivers the files to the API.

All three go through the same sender: bounded memory, its own threads, retries, the durable
outbox, `fire_and_forget: false` confirmation (sent = stored by the Event Store / the bundle
file is durable on disk).

Set `fire_and_forget: false` to wait (at most `wait_timeout_seconds`) for the server's
answer; `error_status` then reports e.g. an unknown use case.

## Throttling

Video runs at 30 fps; the same verdict every frame would be 30 events per second. The
cooldown (`cooldown_seconds`, default 1) admits one event per *key* per cooldown, where the
key is: destination + use case + stream + event type + the event's signature (quality
result and reason, alert type and new violators, item count, custom value, ...). So a
repeated identical event is throttled (`throttling_status: true`) while a *different* one —
a fail after a pass, a new violator, a changed count — always goes through. The memory is
process-wide, so it also throttles across HTTP requests. `0` disables it.

## Context

`stream_id` defaults to the frame's video identifier and the event's timestamp is the
frame's capture time when the frame carries video metadata. `device_id`, `workflow_id`,
`custom_metadata` (flat: string, number or boolean values) are attached as given.

## Errors never stop the pipeline

A missing API key, invalid event data or metadata, a destination that cannot be used (an
unwritable `bundle_dir`, a malformed `event_store_url`), or a delivery error come back as
`error_status: true` with a `message` naming the field; nothing is dropped silently (every
outcome is counted in `vision_events_blocks.block_stats()` and the sender's
`vision_events_blocks.stats()`).

## Example

```json
{
  "type": "vision_events/sink@v1",
  "name": "send",
  "event": "$steps.qc.event",
  "use_case_id": "assembly-line-qa",
  "image": "$inputs.image",
  "output_image": "$steps.boxes.image",
  "device_id": "line-3-cam",
  "destination": "cloud",
  "custom_metadata": {"line": "3", "shift": "$inputs.shift"},
  "cooldown_seconds": 1
}
```

Outputs: `error_status`, `throttling_status`, `message`, `event_id`.
"""
