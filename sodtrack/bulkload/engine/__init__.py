"""The load engine: plan, ledger, checks against Sodtrack, writes, verdicts."""
