"""Authentication: API credentials, access tokens, login throttling."""
