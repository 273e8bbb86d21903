"""Tasks: what differs between classification and causal language models, and the teacher-signal store."""
