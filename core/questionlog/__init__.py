"""The question log: one interface (interface.py), the SQLite store (sqlite.py, the embedded
default), the PostgreSQL store (postgres.py), the factory that opens the one FAQBOT_DB names
(factory.py), and the writer that keeps logging off the reply path (writer.py)."""
