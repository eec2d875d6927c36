"""The data set: pool sources (loading, validation), their vectors, near-duplicates and the datasheet."""
