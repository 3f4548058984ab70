"""Reusable product QR codes: create_reusable_qr, the photo, the product page, the poster."""
