"""One router per resource: health, accounts, runs, scoring, pages."""
