"""The webhook pipeline, one module per stage, in the order an event travels.

:mod:`.route` verifies the signature, validates the envelope and stores the event in the
inbox; :mod:`.queue` enqueues its RQ job and drains what was missed; :mod:`.worker` runs the
jobs; :mod:`.job` processes one stored event; :mod:`.projection` turns Stripe objects into
local rows (lock, watermark, fetch policy, one handler per event type).
"""
