"""App-level helpers between the pages and `sia_core`: caching policy, session keys and the shared sidebar."""
