"""The PostgreSQL store's schema: numbered migrations and the code that applies them once."""
