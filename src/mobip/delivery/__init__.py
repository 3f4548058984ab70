"""Delivery: the outbox, the worker that drains it, and (later) the e-mail, SMS and
callback senders.
"""
