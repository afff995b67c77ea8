"""Kitchen printing: ticket documents, ESC/POS rendering, printer connections and status, the print worker, QR stickers."""
