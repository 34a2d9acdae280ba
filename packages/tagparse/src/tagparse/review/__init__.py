"""`tagparse review`: spot-check parsed tags in a terminal and measure each parser's precision.

The Textual app lives in `app.py` and is imported only by the CLI, so `report`, `stats`, `order`
and `session` work without the `tagparse[review]` extra; their SQL lives in `tagparse.db`.
"""
