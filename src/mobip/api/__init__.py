"""Our small API layer: endpoint declarations and routing, the envelope (form parsing, JSON/XML
replies, return codes), the OpenAPI document, idempotency keys and the creates' group commit.

It knows HTTP and no domain: domains declare their endpoints with ``routing.Endpoint`` and
``routing.Field``; ``mobip.app`` mounts them.
"""
