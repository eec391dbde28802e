"""Ranking: trending and top by votes, personal recommendations."""
