"""The SSRF-guarded HTTP client of everything MOBIP sends to addresses the outside world chose
(merchant callbacks today): public addresses only, checked at every connection."""
