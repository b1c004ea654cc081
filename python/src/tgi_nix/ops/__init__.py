"""Runtime tools for operators: the TGI client, `probe`, `doctor` and the `init` wizard (no click)."""
