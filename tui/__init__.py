"""The manager's console (Textual): live orders first; the other screens of issue #5 build on it."""
