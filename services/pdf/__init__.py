"""PDF: a pdfid-style keyword census of the raw bytes, and with pypdf the scripts, attachments and links."""
