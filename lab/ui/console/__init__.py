"""The training console: `lab ui` serves a page on 127.0.0.1 that draws a lab from its plan and its
event stream (live.py: the state; monitor.py: what watches an idle lab; server.py: the JSON API and
the server-sent events; static/: the page)."""
