"""``python -m gridcast.replay <recording> --now 2025-03-11T09:00Z``: serve one by hand."""

from gridcast.replay.server import main

main()
