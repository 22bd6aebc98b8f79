"""Human in the loop: expert review rounds (sheets, agreement, verdicts applied by clean) and
service feedback (SQLite store, review queue, export of approved corrections). See README.md."""
