"""The append-only event ledger, split by role so read models need only the reader.

``reader``: RecordedEvent, Checkpoint, stream loads and the gap-safe global read.
``writer``: append with optimistic concurrency.
``announcer``: the NOTIFY that wakes readers, sent after the commits.
Nothing is re-exported here, so importing the reader never loads the writer.
"""
