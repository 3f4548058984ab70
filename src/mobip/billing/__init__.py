"""The platform's fee invoices: monthly issuing, gap-free numbering, the PDF (issue 13)."""
