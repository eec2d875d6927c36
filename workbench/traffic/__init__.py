"""Real traffic: chat transcripts, import filters, the LLM label client, labelling, merging and shadow comparison."""
