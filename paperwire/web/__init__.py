"""The web front door: HTML pages, the JSON and Atom APIs, feeds."""
