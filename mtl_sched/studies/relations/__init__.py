"""The task-relation study (seed 003): which tasks help or harm each other when trained
together, in the shape of the seed's tables and figures."""
