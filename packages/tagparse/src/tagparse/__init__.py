"""tagparse: captions to object/attribute tags, stored in a versioned tags.db."""

__version__ = "0.1.0"
