"""Publishing: output feeds, the read-only JSON API and the web page."""
