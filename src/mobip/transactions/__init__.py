"""Payment requests, one-use QR codes, the status machine, cancel, resend, is_valid."""
