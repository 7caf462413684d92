"""The durable job engine: every scheduled action is a row; the broker carries only the last mile.

Domains register a handler per job kind (`registry.handler`) and schedule work with
`service.schedule`; the engine knows nothing about polls or devices.
"""
